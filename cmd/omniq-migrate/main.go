// Command omniq-migrate applies, rolls back and inspects OmniQ's schema
// migrations in a PostgreSQL database.
//
//	omniq-migrate up --database-url postgres://user@host:5432/db --schema omniq
//
// Run "omniq-migrate --help" for the commands and flags.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// connectTimeout bounds each connection attempt unless the URL or
// PGCONNECT_TIMEOUT sets connect_timeout.
const connectTimeout = 10 * time.Second

// parseConfig parses a database URL or key=value string; "" means libpq's PG*
// environment variables alone (pgx reads them for every string).
func parseConfig(raw, source string) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(raw)
	if err != nil {
		// pgconn masks the password in the string it echoes; run scrubs the
		// message again with every password it can find in raw.
		return nil, usagef("invalid database URL from %s: %w", source, err)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = connectTimeout
	}
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = "omniq-migrate"
	}
	return cfg, nil
}

// connectError is a failed connection, told by address, database and user:
// never by the password.
type connectError struct {
	where string
	err   error
}

func (e *connectError) Error() string {
	cause := e.err
	var ce *pgconn.ConnectError
	if errors.As(cause, &ce) && errors.Unwrap(ce) != nil {
		cause = errors.Unwrap(ce) // ConnectError repeats user and database
	}
	// pgconn reports one line per attempt (e.g. with and without TLS); say each once.
	var lines []string
	for _, l := range strings.Split(cause.Error(), "\n") {
		if l = strings.TrimSpace(l); l != "" && !slices.Contains(lines, l) {
			lines = append(lines, l)
		}
	}
	return fmt.Sprintf("cannot connect to PostgreSQL at %s: %s", e.where, strings.Join(lines, "; "))
}

func (e *connectError) Unwrap() error { return e.err }

func connect(ctx context.Context, cfg *pgx.ConnConfig) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, &connectError{where: describe(cfg), err: err}
	}
	return conn, nil
}

// describe names the server cfg points at: addresses, database and user.
func describe(cfg *pgx.ConnConfig) string {
	addrs := []string{address(cfg.Host, cfg.Port)}
	for _, fb := range cfg.Fallbacks {
		if a := address(fb.Host, fb.Port); !slices.Contains(addrs, a) {
			addrs = append(addrs, a)
		}
	}
	return fmt.Sprintf("%s (database %q, user %q)", strings.Join(addrs, ", "), cfg.Database, cfg.User)
}

func address(host string, port uint16) string {
	if strings.HasPrefix(host, "/") {
		return "unix socket " + filepath.Join(host, ".s.PGSQL."+strconv.Itoa(int(port)))
	}
	return net.JoinHostPort(host, strconv.Itoa(int(port)))
}

var (
	// postgres://user:password@host: the userinfo of a URL.
	urlUserinfoRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*://([^/?#]*)@`)
	// password=secret or password='se cret' in a key=value string or a URL query.
	passwordKVRE = regexp.MustCompile(`password\s*=\s*('(?:[^'\\]|\\.)*'|[^\s&]+)`)
)

// passwordsIn returns every string in raw that might be a password, so that
// messages can be scrubbed of them even when raw does not parse.
func passwordsIn(raw string) []string {
	var out []string
	add := func(s string) {
		out = append(out, s)
		if u, err := url.PathUnescape(s); err == nil && u != s {
			out = append(out, u)
		}
	}
	if m := urlUserinfoRE.FindStringSubmatch(raw); m != nil {
		userinfo := m[1]
		if i := strings.IndexByte(userinfo, ':'); i >= 0 {
			add(userinfo[i+1:])
			// The regexp is greedy; the userinfo may end at the first '@' instead.
			if j := strings.IndexByte(userinfo[i+1:], '@'); j >= 0 {
				add(userinfo[i+1 : i+1+j])
			}
		}
	}
	for _, m := range passwordKVRE.FindAllStringSubmatch(raw, -1) {
		add(strings.Trim(m[1], "'"))
	}
	return out
}

// scrub replaces every secret in msg with xxxxx, longest first.
func scrub(msg string, secrets []string) string {
	secrets = slices.Clone(secrets)
	slices.SortFunc(secrets, func(a, b string) int { return len(b) - len(a) })
	for _, s := range secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "xxxxx")
		}
	}
	return msg
}

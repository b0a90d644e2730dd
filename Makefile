# OmniQ: `make demo` runs the main job, `make test` runs every test.
# Both find PostgreSQL through OMNIQ_TEST_DATABASE_URL / OMNIQ_DATABASE_URL, then
# postgres://postgres@127.0.0.1:5432/postgres (see internal/pgtest).

GO ?= go

.PHONY: test vet demo bench fuzz

test: vet
	$(GO) test -race -count=1 -timeout 15m ./...

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...

demo:
	$(GO) run ./cmd/omniq-demo

bench:
	$(GO) run ./cmd/omniq-bench -n 200000

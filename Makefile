# fieldstream — `make help` lists the targets.
GO      ?= go
GOBIN   := $(shell $(GO) env GOPATH)/bin
NATS    := $(GOBIN)/nats
# The modules are those go.work uses; the binaries every services/*/cmd/* main package.
MODULES := $(shell $(GO) work edit -json | sed -n 's/.*"DiskPath": "\.\/\(.*\)".*/\1/p')
BINARIES := $(wildcard services/*/cmd/*)
FUZZTIME ?= 30s
export PATH := $(GOBIN):$(PATH)
export TESTCONTAINERS_RYUK_DISABLED := true

.DEFAULT_GOAL := help
.PHONY: help build run test vet tools bench chaos fuzz dev-secrets clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-8s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## build every binary into bin/ (nats-server too, from the pinned module)
	$(GO) build -o bin/ $(addprefix ./,$(BINARIES))
	cd test && $(GO) build -o ../bin/nats-server github.com/nats-io/nats-server/v2

run: build ## run the pipeline on an embedded JetStream (.data/), gateway on :8080, simulated ServiceTrade
	./bin/fieldstream

test: $(NATS) vet ## run every test of every module with the race detector (installs the nats CLI first if missing)
	@set -e; for m in $(MODULES); do echo "== $$m"; (cd $$m && $(GO) test -race -count=1 ./...); done

vet: ## vet and build every module on its own (GOWORK=off), as CI does
	@set -e; for m in $(MODULES); do (cd $$m && GOWORK=off $(GO) vet ./... && GOWORK=off $(GO) build -o /dev/null ./...); done

tools: $(NATS) ## install the nats CLI (natscli v0.5.0)

$(NATS):
	$(GO) install github.com/nats-io/natscli/nats@v0.5.0

bench: build ## measure ingest (`ingest …`, and with fsync per ack `ingest_always …`), the pipeline end to end (`e2e …`) and replays (`replay …`)
	$(GO) run ./test/bench/ingest -gateway-bin bin/gateway -nats-server-bin bin/nats-server
	$(GO) run ./test/bench/e2e -nats-server-bin bin/nats-server
	$(GO) run ./test/bench/replay -nats-server-bin bin/nats-server -fsctl-bin bin/fsctl

CHAOS_CYCLES   ?= 50
CHAOS_SEED     ?= 0
CHAOS_MAX_DOWN ?= 6s
chaos: build ## fault campaign: CHAOS_CYCLES (50) crash cycles under load, ledger-checked (CHAOS_SEED=… replays one)
	$(GO) run ./test/chaos/cmd/chaos -bin-dir bin -cycles $(CHAOS_CYCLES) -seed $(CHAOS_SEED) -max-down $(CHAOS_MAX_DOWN)

FUZZ_TARGETS := pkg:./webhook:FuzzParseServiceTrade pkg:./webhook:FuzzParseStandard \
	pkg:./webhook:FuzzVerifyStandard pkg:./webhook:FuzzCheckStrict pkg:./webhook:FuzzMemberValue \
	services/gateway:.:FuzzWebhook

fuzz: ## fuzz the webhook parsers, the signature check and both endpoints' handler for FUZZTIME each
	@set -e; for t in $(FUZZ_TARGETS); do \
		m=$${t%%:*}; rest=$${t#*:}; p=$${rest%%:*}; f=$${rest#*:}; echo "== $$m $$p $$f"; \
		(cd $$m && $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$p); done

dev-secrets: ## write a dev CA, the NATS server certificate and one nkey per service for deploy/ into deploy/dev/ (never commit them)
	cd test && $(GO) run ./cmd/devsecrets -out ../deploy/dev

clean: ## remove bin/ and the embedded server's data (.data/)
	rm -rf bin .data

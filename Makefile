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
.PHONY: help build run test vet tools bench chaos fuzz dev-secrets resources clean images cluster-up cluster-down chaos-cluster bench-cluster

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

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
chaos: build ## fault campaign under deploy/nats-server.conf: CHAOS_CYCLES (50) crash cycles (some double, the poller too) under ServiceTrade + Standard Webhooks load, ledger-checked (CHAOS_SEED=… replays one)
	$(GO) run ./test/chaos/cmd/chaos -bin-dir bin -cycles $(CHAOS_CYCLES) -seed $(CHAOS_SEED) -max-down $(CHAOS_MAX_DOWN)

CHAOS_CLUSTER_FAULTS ?= 30
chaos-cluster: images ## fault campaign on the images (Docker): a 3-node cluster, 2 gateways, 2 replicas per consumer; CHAOS_CLUSTER_FAULTS (30) faults, ledger-checked
	$(GO) run ./test/cluster/cmd/chaos-cluster -tag $(IMAGE_TAG) -faults $(CHAOS_CLUSTER_FAULTS) -seed $(CHAOS_SEED)

bench-cluster: images ## measure ingest through 1 and 2 gateways and the drain of one backlog by 1, 2 and 4 workorders replicas on the cluster (`cluster …`)
	$(GO) run ./test/cluster/cmd/bench-cluster -tag $(IMAGE_TAG)

FUZZ_TARGETS := pkg:./webhook:FuzzParseServiceTrade pkg:./webhook:FuzzParseStandard \
	pkg:./webhook:FuzzVerifyStandard pkg:./webhook:FuzzCheckStrict pkg:./webhook:FuzzMemberValue \
	services/gateway:.:FuzzWebhook

fuzz: ## fuzz the webhook parsers, the signature check and both endpoints' handler for FUZZTIME each
	@set -e; for t in $(FUZZ_TARGETS); do \
		m=$${t%%:*}; rest=$${t#*:}; p=$${rest%%:*}; f=$${rest#*:}; echo "== $$m $$p $$f"; \
		(cd $$m && $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$p); done

# Images: fieldstream/<binary>:$(IMAGE_TAG) (and :latest) for every binary and nats-server,
# FROM scratch, from static binaries in .images/bin (deploy/images/build.sh).
ifeq ($(origin IMAGE_TAG),undefined) # once per make: every target of one run uses the same tag
IMAGE_TAG := $(shell git describe --always --dirty)
endif
IMAGE_BIN := .images/bin
images: ## build a FROM-scratch image of every binary and of nats-server: fieldstream/<binary>:<git describe> and :latest
	rm -rf $(IMAGE_BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w' -o $(IMAGE_BIN)/ $(addprefix ./,$(BINARIES))
	cd test && CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w' -o ../$(IMAGE_BIN)/nats-server github.com/nats-io/nats-server/v2
	cd pkg && CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w' -o ../$(IMAGE_BIN)/probe ./probe/cmd/probe
	deploy/images/build.sh $(IMAGE_TAG) $(IMAGE_BIN)

# The host names of deploy/compose's nodes, which the dev server certificate also covers.
CLUSTER_HOSTS := nats-1,nats-2,nats-3
dev-secrets: ## write a dev CA, the NATS server certificate and one nkey per service for deploy/ into deploy/dev/ (never commit them)
	cd test && $(GO) run ./cmd/devsecrets -out ../deploy/dev -hosts $(CLUSTER_HOSTS)

# The three-node cluster of deploy/compose. CLUSTER_PROJECT names its containers, network and
# volumes; the host ports are the README's (8080 the first gateway, 4222-4224 the nodes).
CLUSTER_PROJECT ?= fieldstream
CLUSTER_ENV := FS_IMAGE_TAG=$(IMAGE_TAG) FS_SECRETS_GID=$$(id -g)
COMPOSE := docker-compose -p $(CLUSTER_PROJECT) -f deploy/compose/docker-compose.yml
CLUSTER_NATS := tls://127.0.0.1:$${FS_NATS_PORT:-4222},tls://127.0.0.1:$${FS_NATS_PORT2:-4223},tls://127.0.0.1:$${FS_NATS_PORT3:-4224}
cluster-up: images $(NATS) ## run the three-node cluster of deploy/compose (2 gateways, 2 replicas per consumer, poller, simulators); gateway on 127.0.0.1:8080, nats context fieldstream-cluster
	cd test && $(GO) run ./cmd/devsecrets -out ../deploy/dev -hosts $(CLUSTER_HOSTS) -keep
	chmod -R g+rX deploy/dev # the containers' user joins the group owning deploy/dev to read it
	$(GO) build -o bin/fsctl ./services/fsctl/cmd/fsctl
	$(CLUSTER_ENV) $(COMPOSE) up -d --remove-orphans
	@echo "waiting for the first gateway to be ready"; for i in $$(seq 180); do \
		$(IMAGE_BIN)/probe http://127.0.0.1:$${FS_GATEWAY_PORT:-8080}/readyz 2>/dev/null && break; \
		[ $$i -lt 180 ] || { $(CLUSTER_ENV) $(COMPOSE) ps; echo "not ready after 3 minutes; see: $(COMPOSE) logs"; exit 1; }; sleep 1; done
	$(NATS) context save fieldstream-cluster --server "$(CLUSTER_NATS)" --nkey "$(CURDIR)/deploy/dev/nkeys/admin.nk" \
		--tlsca "$(CURDIR)/deploy/dev/tls/ca.pem" --description "fieldstream: make cluster-up (admin)" >/dev/null
	@$(CLUSTER_ENV) $(COMPOSE) ps
	@echo "gateway http://127.0.0.1:$${FS_GATEWAY_PORT:-8080} (second: :$${FS_GATEWAY2_PORT:-8081}); nats --context fieldstream-cluster stream info EVENTS; bin/fsctl --context fieldstream-cluster status"

cluster-down: ## stop the cluster of cluster-up and remove its containers, network and volumes (and the nats context)
	$(CLUSTER_ENV) $(COMPOSE) down --volumes --remove-orphans --timeout 20
	-$(NATS) context rm fieldstream-cluster --force >/dev/null 2>&1

resources: ## write streams/ as NACK resources (deploy/nack/) and Terraform (deploy/terraform/jetstream/), and deploy/nats-server.conf's users as nats chart values; tests fail on drift
	cd deploy && $(GO) run ./cmd/resources

clean: ## remove bin/, .images/ and the embedded server's data (.data/)
	rm -rf bin .images .data

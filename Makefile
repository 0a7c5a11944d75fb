# Shippy: `make test` runs every test; `make proto` regenerates the committed gRPC code.
SHELL := /bin/bash
# SwiftPM 6.3 otherwise rebuilds some modules at random between `swift build` and `swift test`.
export SWIFT_DETERMINISTIC_HASHING := 1

PLUGINS := Tools/ProtocPlugins/.build/release
PROTOS := $(wildcard Shared/Protos/*.proto)

.PHONY: build release chaos bench bench-tracing bench-gateway bench-micro test test-install test-containers up start stop status demo servers-start servers-stop servers-status proto check-proto plugins openapi check-openapi shellcheck format check-format clean

build:
	swift build

release:
	swift build -c release

## Release build, the system started natively on its own ports, every shippy-bench scenario, a perf profile of each
## call scenario, the MongoDB driver's floor, BENCHMARKS.md and BENCHMARKS.svg; exit 1 when a ratio is more than
## 25 % worse than the committed report's.
bench:
	scripts/bench.sh

## What tracing costs per call: the call scenarios with tracing off and on (every call exported over OTLP to a
## real receiver), interleaved; SHIPPY_BENCH_BASELINE=DIR adds the checkout in DIR (a commit before telemetry).
bench-tracing:
	scripts/bench-tracing.sh

## What the HTTP edge adds: the same cheap call straight over gRPC and through api-gateway, under h2load.
bench-gateway:
	python3 scripts/bench_gateway.py

## In-process benchmarks of the hot paths (token verification, BSON, protobuf): time and allocations.
bench-micro:
	scripts/install.sh
	cd Benchmarks && swift package benchmark

## The fault campaign: a release build under load, every fault in turn (SEED=N replays an order, FAULTS=a,b
## narrows the list), the invariants checked, CHAOS.md and CHAOS.svg written. Exit 0 only when all held.
chaos:
	scripts/install.sh
	swift build -c release
	[ -x .local/venv/bin/python ] || python3 -m venv .local/venv
	.local/venv/bin/python -c 'import pymongo' 2>/dev/null || .local/venv/bin/pip install -q pymongo==4.20.1
	.local/venv/bin/python scripts/chaos.py --build release $(if $(SEED),--seed $(SEED)) $(if $(FAULTS),--faults $(FAULTS))

## Every test: unit, integration against real servers, black-box against the real executables.
test:
	scripts/test.sh

## Proves scripts/install.sh (what make test installs) on a fresh Debian: in a container of a base image made
## with debootstrap.
test-install:
	scripts/containers.sh test-install

## The unchanged Dockerfile and docker-compose.yml run with podman and podman-compose: the user story,
## persistence, non-root, SIGTERM (stand-ins for the images no registry here serves; see docs/containers.md).
test-containers:
	scripts/containers.sh test

## The whole system natively: up (foreground, Ctrl-C stops), start/stop (background), demo (the user story).
up:
	scripts/system.sh up

start:
	scripts/system.sh start

stop:
	scripts/system.sh stop

status:
	scripts/system.sh status

demo:
	scripts/system.sh demo

servers-start:
	scripts/servers.sh start

servers-stop:
	scripts/servers.sh stop

servers-status:
	scripts/servers.sh status

## The two protoc plugins, built once from the package mirror (a few minutes the first time).
plugins: $(PLUGINS)/protoc-gen-swift $(PLUGINS)/protoc-gen-grpc-swift-2

$(PLUGINS)/protoc-gen-swift $(PLUGINS)/protoc-gen-grpc-swift-2:
	cd Tools/ProtocPlugins && swift build -c release --product protoc-gen-swift && swift build -c release --product protoc-gen-grpc-swift-2

## Regenerates Shared/Contracts from Shared/Protos with Debian's protoc.
proto: plugins
	@$(MAKE) --no-print-directory generate OUT=Shared/Contracts

generate:
	mkdir -p $(OUT)
	protoc --plugin=protoc-gen-swift=$(PLUGINS)/protoc-gen-swift \
		--plugin=protoc-gen-grpc-swift=$(PLUGINS)/protoc-gen-grpc-swift-2 \
		-I Shared/Protos \
		--swift_out=Visibility=Public:$(OUT) \
		--grpc-swift_out=Visibility=Public,Client=true,Server=true:$(OUT) \
		$(PROTOS)

## Proves the committed generated code matches the protos.
check-proto: plugins
	@tmp=$$(mktemp -d) && $(MAKE) --no-print-directory generate OUT=$$tmp >/dev/null && \
	if diff -r $$tmp Shared/Contracts; then echo "Shared/Contracts matches Shared/Protos"; rm -rf $$tmp; \
	else echo "Shared/Contracts is stale: run make proto" >&2; rm -rf $$tmp; exit 1; fi

OPENAPI_GENERATOR := Tools/OpenAPIGenerator/.build/release/swift-openapi-generator
GATEWAY := Services/api-gateway

$(OPENAPI_GENERATOR):
	cd Tools/OpenAPIGenerator && swift build -c release --product swift-openapi-generator

## Regenerates the API gateway's types and routing (Services/api-gateway/Generated) from its openapi.yaml.
openapi: $(OPENAPI_GENERATOR)
	@$(MAKE) --no-print-directory generate-openapi OUT=$(GATEWAY)/Generated

generate-openapi:
	mkdir -p $(OUT)
	$(OPENAPI_GENERATOR) generate --config $(GATEWAY)/openapi-generator-config.yaml --output-directory $(OUT) \
		$(GATEWAY)/openapi.yaml >/dev/null

## Proves the committed generated code matches openapi.yaml.
check-openapi: $(OPENAPI_GENERATOR)
	@tmp=$$(mktemp -d) && $(MAKE) --no-print-directory generate-openapi OUT=$$tmp && \
	if diff -r $$tmp $(GATEWAY)/Generated; then echo "$(GATEWAY)/Generated matches openapi.yaml"; rm -rf $$tmp; \
	else echo "$(GATEWAY)/Generated is stale: run make openapi" >&2; rm -rf $$tmp; exit 1; fi

shellcheck:
	shellcheck scripts/*.sh .ci/run

## Formats every Swift source with swift-format and the root .swift-format (generated code excepted).
format:
	git ls-files --cached --others --exclude-standard '*.swift' | grep -v -e '^Shared/Contracts/' -e '^Tools/' -e '/Generated/' | \
		xargs swift-format format --configuration .swift-format -i

## Fails on a Swift source that `make format` would change (make test runs it).
check-format:
	scripts/check-format.sh

clean:
	swift package clean

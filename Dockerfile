# syntax=docker/dockerfile:1
# One image holding every Shippy command; docker-compose.yml picks the command of each container.

# Build: the official Swift image (the Swift the native build uses), release mode, the Swift runtime linked
# statically so that the runtime image needs only the C libraries below.
FROM swift:6.3-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends pkg-config libmongoc-dev libbson-dev libnats-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
ENV SWIFT_DETERMINISTIC_HASHING=1
# Package.swift names these folders (the Swift test targets' too), so all are needed to resolve the package; the
# Python tests and tools are left out (.dockerignore), so that changing one does not rebuild this stage.
COPY Package.swift ./
COPY Shared ./Shared
COPY Services ./Services
COPY Tests ./Tests
# One executable, `shippy`, holds every server and CLI and runs the one named by the link it runs under (below):
# one copy of the Swift runtime and of the libraries instead of nine.
# api-gateway's web app and OpenAPI document are its resource bundle, which must sit beside the executable.
RUN swift build -c release --static-swift-stdlib --product shippy \
    && mkdir /out /resources \
    && cd "$(swift build -c release --show-bin-path)" \
    && cp shippy /out/ \
    && cp -r Shippy_APIGateway.resources /resources/
# Symbols and debug information stay in the build stage; the runtime image gets stripped executables.
RUN strip /out/shippy

# Run: Debian slim with only the libraries the binaries link (their ELF NEEDED entries, Swift's own
# libraries excluded as they are static). Tests/System/test_deployment.py checks this list against `readelf -d`
# of the native binaries, so keep the line below and the apt-get line in step:
# runtime-packages: libmongoc-1.0-0 libbson-1.0-0 libnats3.4 libstdc++6 libgcc-s1 zlib1g libc6
# openssl is for shippy-certificates (scripts/certificates.sh), compose's one-shot `certificates` service.
# The folders compose mounts volumes on are made here, owned by shippy, so that each new volume is too: /tls in
# every service (its identity, read-only), /certificates/NAME where `certificates` writes each identity, and
# /certificates/authority, the development authority's own.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        libmongoc-1.0-0 libbson-1.0-0 libnats3.4 libstdc++6 libgcc-s1 zlib1g libc6 ca-certificates tzdata openssl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin shippy \
    && mkdir -p /keys/private /keys/public /work /tls /certificates/authority /certificates/vessel-service \
        /certificates/user-service /certificates/consignment-service /certificates/email-service \
        /certificates/api-gateway /certificates/shippy-cli /certificates/nats /certificates/postgres \
        /certificates/mongo \
    && chown shippy: /keys/private /keys/public /tls /certificates/* \
    && chmod 700 /keys/private /certificates/*
COPY --from=build /out/shippy /usr/local/bin/
RUN for command in vessel-service user-service consignment-service email-service api-gateway user-cli consignment-cli \
        vessel-cli shippy-bench; do ln -s shippy "/usr/local/bin/$command"; done
COPY --from=build /resources/ /usr/local/bin/
COPY scripts/certificates.sh /usr/local/bin/shippy-certificates
USER shippy
ENV HOST=0.0.0.0
# No libmongoc counters in /dev/shm: a file per process, left behind by one that is killed.
ENV MONGOC_DISABLE_SHM=1

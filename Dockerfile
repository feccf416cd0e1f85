# syntax=docker/dockerfile:1
# One image for every role: the role is chosen by the container's args
# (`serve --role household`, ...). Multi-stage: build with the full Rust
# toolchain, run on a slim Debian as a non-root user.

FROM rust:1.95-bookworm AS build
# Debian stable replaces package versions with security updates, so exact
# apt pins would break the build; the base images are pinned by tag instead.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends clang libclang-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p popbase \
 && install -D -m 0755 target/release/popbase /out/popbase

FROM debian:bookworm-slim AS runtime
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 popbase \
 && useradd --system --uid 10001 --gid popbase --home-dir /var/lib/popbase --shell /usr/sbin/nologin popbase \
 && mkdir -p /var/lib/popbase \
 && chown popbase:popbase /var/lib/popbase
COPY --from=build /out/popbase /usr/local/bin/popbase
USER 10001:10001
ENV POPBASE_DATA_DIR=/var/lib/popbase
VOLUME ["/var/lib/popbase"]
# gateway (gRPC and Flight), household, residence, feeds, ledger, metrics, health.
EXPOSE 50051 50061 50062 50063 50064 9090 8086
ENTRYPOINT ["/usr/local/bin/popbase"]
CMD ["serve", "--role", "all"]

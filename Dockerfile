# The image the Kubernetes shards run (deploy/kubernetes, docs/scale-out.md):
#   docker build -t <registry>/pgbench-repl:<tag> .
# A static-enough binary on Debian's slim base: no PostgreSQL inside (the shards drive a
# cluster of yours, named in the workload's [cluster]); psql is there for a look around.

FROM rust:1-bookworm AS build
WORKDIR /src
# Dependencies first, so a change to the sources does not fetch and build them again.
COPY Cargo.toml Cargo.lock ./
COPY benches/hot_paths.rs benches/hot_paths.rs
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo build --release --locked --bin pgbench-repl \
    && rm -rf src target/release/deps/pgbench_repl* target/release/deps/libpgbench_repl* \
       target/release/pgbench-repl*
COPY assets assets
COPY src src
RUN cargo build --release --locked --bin pgbench-repl \
    && strip target/release/pgbench-repl

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libssl3 postgresql-client \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --uid 10001 --user-group --home-dir /data --create-home pgbench-repl
COPY --from=build /src/target/release/pgbench-repl /usr/local/bin/pgbench-repl
COPY workloads /usr/share/pgbench-repl/workloads
USER 10001:10001
WORKDIR /data
ENTRYPOINT ["pgbench-repl"]
CMD ["--help"]

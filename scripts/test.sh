#!/usr/bin/env bash
# The one command that runs every KyroDB test, on a fresh Debian machine with only Rust installed.
#
# It sets up what the tests need (PostgreSQL 15 with pgvector, via scripts/setup-postgres.sh),
# checks formatting and lints, builds the whole workspace (the tests load the connector and
# fixture cdylibs and start the kyro binary from target/debug), and runs the tests.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> setting up PostgreSQL with pgvector"
scripts/setup-postgres.sh
export KYRO_TEST_DATABASE_URL="${KYRO_TEST_DATABASE_URL:-postgres://kyro:kyro@127.0.0.1:5432/kyro_test}"
scripts/setup-contract.sh

# A one-shot build gains nothing from incremental caches and they cost gigabytes of disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
# The SDK as a plugin author builds it: without the host-side features.
cargo clippy -p kyro-connector-sdk --locked -- -D warnings

echo "==> cargo build (plugins, fixtures and the kyro binary the tests load and start)"
cargo build --workspace --locked

if [ -z "${KYRO_QDRANT_URL:-}" ]; then
  echo "==> qdrant server tests not run: set KYRO_QDRANT_URL to a Qdrant 1.x gRPC endpoint (examples/qdrant-live/) to run them"
fi

echo "==> cargo test"
INSTA_UPDATE=no cargo test --workspace --locked

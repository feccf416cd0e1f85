#!/usr/bin/env bash
# Runs every test of the workspace (unit, storage on real RocksDB, end-to-end
# servers on ephemeral ports), installing build prerequisites first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/rocksdb.sh
cargo test --workspace --locked "$@"

#!/usr/bin/env bash
# Starts popbase with every role in one process on a generated demo city
# (20,000 residents of Zibo, created in ./popbase-data on first start).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/rocksdb.sh
exec cargo run --locked -p popbase -- demo "$@"

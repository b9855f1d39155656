#!/usr/bin/env bash
# Regenerates the committed sample store data/sample (deterministic: same seed, size and as-of;
# a debug build writes the same files as a release build and compiles much sooner).
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf data/sample
cargo run -- generate --out data/sample --persons 3000 --days 365 --seed 42 \
  --as-of 2026-11-01 --partition month

#!/usr/bin/env bash
# The reliability runs too long for CI (see RELIABILITY.md for results):
# 10 000 damaged files through the live pool, a 60 s soak through nginx,
# and 10 M executions of each fuzz target. About 15 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
DAMAGED_FLIPS=10000 cargo test --release --test faults damaged_media -- --nocapture
SOAK_SECONDS=60 cargo test --release --test soak -- --nocapture
cd fuzz
export RUSTC_BOOTSTRAP=1
cargo fuzz run engine -- -max_len=40000 -runs=10000000 -print_final_stats=1
cargo fuzz run fcgi -- -runs=10000000 -print_final_stats=1

#!/usr/bin/env bash
# Bounded fuzz run (CI): every target for FUZZ_SECS seconds (default 15),
# starting from the committed corpus; new inputs go to a scratch dir, so the
# tree is not changed. Exits non-zero on the first property violation and
# prints the input that broke it (copy it into fuzz/corpus/<target>/ once
# fixed, so `cargo test` replays it forever).
set -euo pipefail
cd "$(dirname "$0")"
SECS="${FUZZ_SECS:-15}"
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked --version 0.13.2 --quiet
fi
# cargo-fuzz passes nightly-only flags; the stable compiler accepts them
# with RUSTC_BOOTSTRAP. No sanitizer: the targets are safe Rust over safe
# Rust; debug assertions on, so integer overflow is a finding too.
export RUSTC_BOOTSTRAP=1
FLAGS=(-O -a -s none)
cargo fuzz build "${FLAGS[@]}"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
for t in $(cargo fuzz list); do
    mkdir -p "$scratch/$t"
    if ! cargo fuzz run "${FLAGS[@]}" "$t" "$scratch/$t" "corpus/$t" -- \
        -max_total_time="$SECS" -max_len=4096 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$scratch/$t.log" 2>&1; then
        grep -v '^#' "$scratch/$t.log" | tail -60
        echo "fuzz smoke: target $t FAILED (input saved under fuzz/artifacts/$t/)"
        exit 1
    fi
    echo "fuzz smoke: $t ok ($(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$scratch/$t.log" | grep -o '[0-9]*$') runs in ${SECS}s)"
done

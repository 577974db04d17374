#!/usr/bin/env bash
# Instructions per record for the in-process pipeline jobs of
# examples/stages.rs, counted by valgrind (cachegrind, no cache model): a
# figure that does not move with the machine's load, for comparing changes.
# Setup cost cancels out: (Ir(2N) - Ir(N)) / N.
#
#     cargo build --release --examples && examples/bench/instructions.sh [job ...]
#
# Jobs: c-null c-raw b-no-filter b-native default a-no-lua a-sidecar (default: all).
# Needs valgrind (apt-get install valgrind). `--smc-check=all-non-file`:
# LuaJIT compiles gatelog's generated Lua code to machine code it may patch
# later, which valgrind must see.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${N:-10000}
stages=target/release/examples/stages
[ -x "$stages" ] || { echo "build it first: cargo build --release --examples" >&2; exit 1; }
refs() {
    valgrind --tool=cachegrind --cache-sim=no --smc-check=all-non-file --cachegrind-out-file=/dev/null "$stages" "$1" "$2" 2>&1 \
        | grep 'I *refs' | tr -d ',' | awk '{print $NF}'
}
for job in "${@:-c-null c-raw b-no-filter b-native default a-no-lua a-sidecar}"; do
    for j in $job; do
        a=$(refs "$N" "$j")
        b=$(refs $((2 * N)) "$j")
        printf '%-12s %8d instructions/record\n' "$j" $(((b - a) / N))
    done
done

#!/bin/sh
# Instruction counts per order-0 allocation + free pair (valgrind's callgrind), for when wall
# time on a shared machine is too noisy. Runs the engine bench in quick mode (20480 pairs a
# sample, 3 samples + 1 warm-up) with a callgrind dump around each benchmark function, and
# prints instructions per pair for each board.
#
#   sh benches/callgrind_order0.sh
set -eu
cd "$(dirname "$0")/.."
cargo bench -p cmadev-mm --bench engine --no-run 2>/dev/null
bin=$(ls -t target/release/deps/engine-* | grep -v '\.d$' | head -n 1)
out=$(mktemp -d)
CMADEV_BENCH_QUICK=1 valgrind --tool=callgrind --callgrind-out-file="$out/cg.out" \
    --dump-before='engine::pair_fast' --dump-after='engine::pair_fast' \
    --dump-after='engine::pair_owned' --dump-after='engine::batch_owned' \
    "$bin" order0 >/dev/null 2>&1
pairs=$((4 * 20480)) # (3 samples + 1 warm-up) x 20480 pairs
boards="256MiB 1GiB+256MiB-CMA 64GiB"
for f in $(ls "$out"/cg.out.* | sort -t. -k3 -n); do
    trigger=$(sed -n 's/^desc: Trigger: --dump-after=engine:://p' "$f")
    [ -n "$trigger" ] || continue
    ir=$(sed -n 's/^summary: //p' "$f")
    set -- $boards
    board=$1
    [ "$trigger" = batch_owned ] && boards="${boards#* }"
    echo "$trigger $board $((ir / pairs)) instructions/pair"
done
rm -rf "$out"

#!/bin/sh
# Instruction counts for the fully referenced cma_alloc walk (valgrind's callgrind), for when
# wall time on a shared machine is too noisy: the engine bench's `cma_walk_referenced` in
# quick mode (one sample), counting only the walk itself (`engine::walk`: cma_alloc to
# completion, not the board's boot and fill). Prints instructions for the walk and per busy
# retry (29,731 of them).
#
#   sh benches/callgrind_walk.sh
set -eu
cd "$(dirname "$0")/.."
cargo bench -p cmadev-mm --bench engine --no-run 2>/dev/null
bin=$(ls -t target/release/deps/engine-* | grep -v '\.d$' | head -n 1)
out=$(mktemp -d)
CMADEV_BENCH_QUICK=1 valgrind --tool=callgrind --callgrind-out-file="$out/cg.out" \
    --collect-atstart=no --toggle-collect='engine::walk' "$bin" cma_walk >/dev/null 2>&1
ir=$(sed -n 's/^summary: //p' "$out/cg.out")
retries=29731
echo "cma_walk_referenced $ir instructions, $((ir / retries)) instructions/busy retry"
rm -rf "$out"

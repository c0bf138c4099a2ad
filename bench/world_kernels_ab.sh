#!/usr/bin/env bash
# The world-model play paths side by side: the CPU kernels (`--path host`, the CPU default)
# against the backend's fused operations (`--path fused`), one binary, alternating runs, FPS at
# S = 4.
#
#   bench/world_kernels_ab.sh ROUNDS MODEL... 
#
# Example (docs/benchmarks.md, "Host kernels"):
#   bench/world_kernels_ab.sh 3 models/world-pong models/world-traveler models/world-pacman
set -euo pipefail
rounds=$1
shift
bin=${GAMEGEN:-target/release/gamegen}
for r in $(seq 1 "$rounds"); do
  for m in "$@"; do
    for side in fused host; do
      fps=$("$bin" world bench --model "$m" --frames 60 --steps 4 --flex-only --path "$side" \
        | tail -1 | awk -F'|' '{gsub(/ /, "", $3); print $3}')
      echo "round $r $(basename "$m") $side: $fps FPS"
    done
  done
done

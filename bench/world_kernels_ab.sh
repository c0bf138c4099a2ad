#!/usr/bin/env bash
# The world-model play path with the host kernels (the CPU default) against the backend's own
# GELU/SiLU/attention (`--backend-kernels`), one binary, alternating runs, FPS at S = 4.
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
    for side in backend host; do
      flag=()
      [ "$side" = backend ] && flag=(--backend-kernels)
      fps=$("$bin" world bench --model "$m" --frames 60 --steps 4 --flex-only "${flag[@]}" \
        | tail -1 | awk -F'|' '{gsub(/ /, "", $3); print $3}')
      echo "round $r $(basename "$m") $side: $fps FPS"
    done
  done
done

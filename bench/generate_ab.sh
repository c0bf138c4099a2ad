#!/usr/bin/env bash
# Two `gamegen` binaries side by side on the same `generate` job, alternating runs, printing
# each run's tokens/s (generated tokens over generation time, as `gamegen generate` reports)
# and the CPU seconds (user + sys) the run used, which is steadier than wall time when other
# jobs share the machine.
#
#   bench/generate_ab.sh OLD_BINARY NEW_BINARY REPEATS -- <generate arguments without --out>
#
# Example (docs/benchmarks.md, "ByteCraft generation: continuous batching"):
#   bench/generate_ab.sh /tmp/gamegen-before target/release/gamegen 3 -- \
#       --model models/bytecraft-mini --prompts bench/prompts8.txt -n 4 --batch 8 --max-new 256
set -euo pipefail
old=$1 new=$2 repeats=$3
shift 3
[ "${1:-}" = "--" ] && shift
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for r in $(seq 1 "$repeats"); do
  for side in old new; do
    bin=$old
    [ "$side" = new ] && bin=$new
    out="$work/$side-$r"
    TIMEFORMAT='%U %S'
    { time "$bin" generate "$@" --out "$out" >"$work/stdout" 2>/dev/null; } 2>"$work/time"
    line=$(tail -1 "$work/stdout")
    tps=$(sed -E 's/.*\(([0-9.]+) tokens\/s\).*/\1/' <<<"$line")
    tokens=$(sed -E 's/.*; ([0-9]+) tokens in.*/\1/' <<<"$line")
    cpu=$(awk '{printf "%.1f", $1 + $2}' "$work/time")
    echo "$side run $r: $tps tokens/s, $cpu CPU s ($tokens tokens)"
  done
done

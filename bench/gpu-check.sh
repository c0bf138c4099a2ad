#!/usr/bin/env bash
# The prepared run for a lent GPU machine (a few minutes of it, once): the CUDA build, the
# backends it sees, a few world-model and ByteCraft training steps on CUDA, and a generation
# benchmark on CUDA against the CPU. Every step is timed and logged; a failing step does not stop
# the others. Logs go to $OUT (the device tool's folder that comes back) or out/gpu-check.
#
#   bench/gpu-check.sh            # on the GPU machine, from the repository root
#
# Record what it showed in docs/benchmarks.md ("GPU check") with the date and the card.
set -uo pipefail
out=${OUT:-out/gpu-check}
mkdir -p "$out"
bin=target/release/gamegen
summary="$out/summary.txt"
: > "$summary"

step() {
  local name=$1
  shift
  local start end rc
  start=$(date +%s.%N)
  "$@" > "$out/$name.log" 2>&1
  rc=$?
  end=$(date +%s.%N)
  printf '%-16s rc=%-3s %7.1f s\n' "$name" "$rc" "$(echo "$end - $start" | bc)" | tee -a "$summary"
  tail -4 "$out/$name.log" | sed 's/^/    /' | tee -a "$summary"
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$out/gpu.csv" 2>&1
cat "$out/gpu.csv" >> "$summary"
step build cargo build --release --features cuda
step backends "$bin" backends
# World model: a small Pong dataset, 20 VAE + 20 dynamics steps on CUDA.
step collect "$bin" collect --game pong --episodes 16 --out "$out/data-pong" --seed 1
step world-train "$bin" world train --backend cuda --game pong --data "$out/data-pong" \
  --out "$out/world-pong" --vae-steps 20 --steps 20 --logic-steps 0
# ByteCraft: a few fine-tuning steps of the shipped mini model on fresh synth files, on CUDA.
step synth "$bin" corpus synth --count 256 --out "$out/synth" --seed 3
step bytecraft-train "$bin" bytecraft train --backend cuda --corpus "$out/synth" \
  --from models/bytecraft-mini --out "$out/bytecraft-ft" --steps 10
# Generation: the same job on CUDA and on the CPU (tokens/s are in the last lines).
step generate-cuda "$bin" generate --backend cuda --model models/bytecraft-mini \
  --prompts bench/prompts8.txt -n 8 --batch 64 --max-new 256 --out "$out/gen-cuda"
step generate-cpu "$bin" generate --model models/bytecraft-mini \
  --prompts bench/prompts8.txt -n 8 --batch 64 --max-new 256 --out "$out/gen-cpu"
echo "summary: $summary"

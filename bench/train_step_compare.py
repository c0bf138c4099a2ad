#!/usr/bin/env python3
"""gamegen's training steps beside their PyTorch twins, same shapes, same threads.

For each step (world-vae, world-dynamics, bytecraft) runs `gamegen bench train-step` and
`train_step_twin.py` alternately, `--rounds` times each, with the compute pool / torch limited to
`--threads`, and prints ms per step (median of the rounds' medians), the CPU/wall ratio of
gamegen's step, and the ratio gamegen / PyTorch (below 1: gamegen is faster).

    bench/.venv/bin/python bench/train_step_compare.py --world models/world-pong \
        --bytecraft models/bytecraft-mini --threads 2 --rounds 2 --steps 5

Time it on an idle machine: the two sides alternate so that drift in the machine's speed hits
both, but other work on the cores does not.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def run_json(cmd, env):
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")][-1]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--step", nargs="+", default=["world-vae", "world-dynamics", "bytecraft"])
    p.add_argument("--world", default="models/world-pong")
    p.add_argument("--bytecraft", default="models/bytecraft-mini")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--lm-batch", type=int, default=8)
    p.add_argument("--lm-len", type=int, default=1024)
    p.add_argument("--gamegen", default=os.environ.get("GAMEGEN", "target/release/gamegen"))
    p.add_argument("--backend", default="cpu", help="gamegen's backend (cpu, tch, candle, ...)")
    p.add_argument("--devices", type=int, default=1, help="gamegen's data-parallel replicas")
    a = p.parse_args()
    env = dict(os.environ, RAYON_NUM_THREADS=str(a.threads), OMP_NUM_THREADS=str(a.threads))
    common = ["--warmup", str(a.warmup), "--steps", str(a.steps)]
    ours_only = ["--backend", a.backend, "--devices", str(a.devices)]
    print("| step | model | gamegen backend x devices | gamegen ms | CPU/wall | PyTorch ms "
          "| gamegen / PyTorch |")
    print("|---|---|---|---|---|---|---|")
    for step in a.step:
        model = a.bytecraft if step == "bytecraft" else a.world
        lm = ["--lm-batch", str(a.lm_batch), "--lm-len", str(a.lm_len)]
        ours_cmd = [a.gamegen, "bench", "train-step", "--kind", step, "--model", model]
        ours_cmd += common + lm + ours_only
        twin_cmd = [sys.executable, os.path.join(HERE, "train_step_twin.py"), "--step", step,
                    "--threads", str(a.threads)] + common + lm
        twin_cmd += ["--bytecraft", model] if step == "bytecraft" else ["--world", model]
        ours, twin, busy = [], [], []
        for _ in range(a.rounds):
            r = run_json(ours_cmd, env)
            ours.append(r["ms_per_step"])
            busy.append(r["cpu_per_wall"])
            twin.append(run_json(twin_cmd, env)["ms_per_step"])
        o, t = statistics.median(ours), statistics.median(twin)
        print(f"| {step} | {os.path.basename(model.rstrip('/'))} | {a.backend} x {a.devices} "
              f"| {o:.0f} | "
              f"{statistics.median(busy):.2f} | {t:.0f} | {o / t:.2f}x |", flush=True)


if __name__ == "__main__":
    main()

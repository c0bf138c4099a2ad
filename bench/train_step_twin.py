#!/usr/bin/env python3
"""PyTorch twins of three gamegen training steps, for a side-by-side CPU training-speed benchmark.

Each twin is built from the same config values as gamegen's (a model directory's `config.json`),
with the batch and sequence shapes gamegen's CLI uses by default, AdamW, f32, eager mode, and
`torch.set_num_threads(--threads)`. One step = draw the step's noise, forward, backward,
per-tensor gradient clipping, AdamW update, read the loss back (as gamegen's step does); the
batch itself (frames, latents, map crops, tokens) is made once, outside the timed region, as
gamegen's data pipeline makes it outside `step_on`. Printed: one JSON line per step with the
median wall time over `--steps` measured steps after `--warmup` steps, and both parameter counts
(PyTorch's, and gamegen's from the tensor shapes in the model directory's safetensors files).

- `world-vae` (`core/src/world/train/vae.rs`, `model/vae.rs`): encoder + decoder on
  `--vae-batch` (default 16, `gamegen world train --vae-batch-size`) random frames of the game's
  size; pixel shuffle (space-to-depth in, depth-to-space out) when the config has it; loss
  L1 + image-gradient L1 + KL(weight from the config) with a reparameterised posterior sample.
- `world-dynamics` (`core/src/world/train/diffusion.rs`, `model/{dit,world,logicnet,spatial}.rs`):
  one diffusion-forcing step on `--batch` (default 8, `--batch-size`) clips of `--clip-len`
  (default 8) pre-encoded latents (gamegen trains the dynamics on its latent cache, so no VAE
  runs here): per-frame noise levels (first frame clean with probability 0.5), the recurrent
  DiT cell unrolled over the clip from the learnable initial state with BPTT through z,
  the v head, the v objective with the min-SNR weight fused with the decayed cumulative SNR of
  earlier frames (the same f64 maths as `schedule.rs`), LogicNet's BCE on `z_{t-1}` for t > 0
  (weight from the config), digit tokens and, for games with the spatial module, the map CNN on
  every frame's local map crop and its tokens.
- `bytecraft` (`core/src/bytecraft/train.rs`): transformers' `Qwen2ForCausalLM` from the
  model directory's config (random init), `--lm-batch` x `--lm-len` tokens (default 8 x 1024),
  summed masked next-token cross-entropy over the predicted tokens divided by their count.

Optimiser (all three): AdamW with gamegen's betas, weight decay and epsilon (Burn's default 1e-5;
world: 0.9/0.99, wd 0.002, lr 1e-3 with linear warm-up; ByteCraft: 0.9/0.95, wd 0.01), and
gradient clipping at norm 1.0 per parameter tensor, as Burn's `GradientClipping::Norm` does
(it clips each tensor's gradient by its own norm, not the global norm).

Where the twin differs from gamegen (same matmul/conv shapes and counts, other kernels):
- It is written as a PyTorch engineer would write it: `F.layer_norm` (gamegen's training
  path spells the affine-free layer norm out as mean/centre/var/div), `F.group_norm`,
  `F.scaled_dot_product_attention` (gamegen: matmul, softmax, matmul; `--attention math` gives
  that form here too), `F.binary_cross_entropy_with_logits` (gamegen: log-sigmoid terms),
  `F.pixel_unshuffle`/`F.pixel_shuffle` (the same channel order as gamegen's
  space_to_depth/depth_to_space), `F.cross_entropy` (gamegen: log_softmax + gather), and
  `torch.optim.AdamW` (`--adamw fused|foreach|loop`).
- Random data and torch's RNG instead of gamegen's PRNG streams; initial weights are torch's
  defaults (gamegen redraws them from its own PRNG), except that the adaLN and final layers of
  the DiT start at zero in both. Noise is clamped to +-6 as gamegen's `gaussian_values`.
- The long-tail clip sampler, checkpointing and logging are outside gamegen's step and are
  not here. ByteCraft's batch is full (every position a predicted token; gamegen masks the
  prompt, which changes no shape). gamegen's Qwen2 attention is its own Burn code; transformers
  picks its attention implementation with `--lm-attention` (default `sdpa`).
- The world steps' parameter counts exclude the play decoder (`light.*` in vae.safetensors):
  it is trained later by `gamegen world train-decoder`, not by the VAE step.

    nice -n 19 bench/.venv/bin/python bench/train_step_twin.py --step all \
        --world models/world-pong --bytecraft models/bytecraft-mini --threads 2
"""

import argparse
import json
import math
import os
import statistics
import struct
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# ---------------------------------------------------------------------------------------------
# Shared helpers


def safetensors_shapes(path):
    """Tensor name -> shape, read from a safetensors header (no weights loaded)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    header.pop("__metadata__", None)
    return {k: v["shape"] for k, v in header.items()}


def numel(shape):
    return math.prod(shape) if shape else 1


def gamegen_params(path, skip_prefixes=()):
    shapes = safetensors_shapes(path)
    return sum(numel(s) for k, s in shapes.items() if not k.startswith(tuple(skip_prefixes)))


def count_params(module):
    # Unique parameters (tied weights once), as `model.num_parameters()` does.
    return sum(p.numel() for p in {id(p): p for p in module.parameters()}.values())


def groups_for(channels):
    """gamegen's `blocks::groups_for`: the largest divisor of `channels` up to 32."""
    for g in range(min(channels, 32), 0, -1):
        if channels % g == 0:
            return g
    return 1


def group_norm(c):
    return nn.GroupNorm(groups_for(c), c, eps=1e-5)  # Burn's GroupNorm default epsilon


def conv3(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1)


def conv1(cin, cout):
    return nn.Conv2d(cin, cout, 1)


def gaussian(shape, generator=None):
    # gamegen clamps its noise to CLIP_NOISE = 6 standard deviations.
    return torch.randn(shape, generator=generator).clamp_(-6.0, 6.0)


class ResBlock(nn.Module):
    """`GN, SiLU, conv3, GN, SiLU, conv3` plus a 1x1 skip when the channel count changes."""

    def __init__(self, cin, cout):
        super().__init__()
        self.norm1 = group_norm(cin)
        self.conv1 = conv3(cin, cout)
        self.norm2 = group_norm(cout)
        self.conv2 = conv3(cout, cout)
        self.skip = conv1(cin, cout) if cin != cout else None

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return h + (self.skip(x) if self.skip is not None else x)


def clip_per_tensor(params, max_norm):
    """Burn's `GradientClipping::Norm`: each gradient tensor scaled by
    `min(1, max_norm / (||g|| + min_positive))`, its own norm."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    norms = torch.stack(torch._foreach_norm(grads))
    coefs = (max_norm / (norms + torch.finfo(torch.float32).tiny)).clamp_(max=1.0)
    torch._foreach_mul_(grads, list(coefs.unbind()))


def make_adamw(params, args, lr, betas, weight_decay):
    kw = dict(lr=lr, betas=betas, eps=1e-5, weight_decay=weight_decay)
    if args.adamw == "fused":
        kw["fused"] = True
    elif args.adamw == "foreach":
        kw["foreach"] = True
    else:
        kw["foreach"] = False
    return torch.optim.AdamW(params, **kw)


def warmup_lr(base, warmup, step):
    return base if warmup == 0 else base * min((step + 1) / warmup, 1.0)


def time_steps(step_fn, warmup, steps):
    """Wall times (ms) of the measured steps, and the last step's loss (a finite check)."""
    loss = None
    for i in range(warmup):
        loss = step_fn(i)
    times = []
    for i in range(steps):
        t0 = time.perf_counter()
        loss = step_fn(warmup + i)
        times.append((time.perf_counter() - t0) * 1e3)
    return times, loss


def report(name, timed, args, params, gamegen, shapes, extra=None):
    times, loss = timed
    line = {
        "step": name,
        "ms_per_step": round(statistics.median(times), 2),
        "threads": args.threads,
        "params": params,
        "gamegen_params": gamegen,
        "params_match": params == gamegen,
        "shapes": shapes,
        "runs_ms": [round(t, 2) for t in times],
        "last_loss": loss,
        "warmup": args.warmup,
        "adamw": args.adamw,
        "torch": torch.__version__,
    }
    if extra:
        line.update(extra)
    print(json.dumps(line), flush=True)


def load_world(path):
    with open(os.path.join(path, "config.json")) as f:
        cfg = json.load(f)
    if cfg.get("format") != "gamegen-world":
        raise SystemExit(f"{path}/config.json is not a gamegen-world config")
    return cfg


# ---------------------------------------------------------------------------------------------
# world-vae (model/vae.rs)


class SpatialAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.norm = group_norm(c)
        self.q, self.k, self.v, self.proj = conv1(c, c), conv1(c, c), conv1(c, c), conv1(c, c)

    def forward(self, x):
        b, c, h, w = x.shape
        n = self.norm(x)
        q = self.q(n).reshape(b, c, h * w).transpose(1, 2)
        k = self.k(n).reshape(b, c, h * w)
        v = self.v(n).reshape(b, c, h * w).transpose(1, 2)
        attn = torch.softmax(q @ k / math.sqrt(c), dim=2)
        return x + self.proj((attn @ v).transpose(1, 2).reshape(b, c, h, w))


class MidBlock(nn.Module):
    def __init__(self, c, attention):
        super().__init__()
        self.res1 = ResBlock(c, c)
        self.attn = SpatialAttention(c) if attention else None
        self.res2 = ResBlock(c, c)

    def forward(self, x):
        x = self.res1(x)
        if self.attn is not None:
            x = self.attn(x)
        return self.res2(x)


class Vae(nn.Module):
    def __init__(self, c):
        super().__init__()
        mult = c["channel_mult"]
        levels = len(mult)
        self.shuffle = bool(c.get("pixel_shuffle", False))
        self.latent_channels = c["latent_channels"]
        self.kl_weight = c["kl_weight"]
        self.structure_weight = c["structure_weight"]
        pix = 4 if self.shuffle else 1
        ch = lambda m: c["channels"] * m  # noqa: E731
        dch = lambda m: c["decoder_channels"] * m  # noqa: E731

        enc = nn.Module()
        enc.conv_in = conv3(3 * pix, c["channels"])
        enc.blocks = nn.ModuleList()
        enc.downs = nn.ModuleList()
        cin = c["channels"]
        for i, m in enumerate(mult):
            level = nn.ModuleList()
            for _ in range(c["num_res_blocks"]):
                level.append(ResBlock(cin, ch(m)))
                cin = ch(m)
            enc.blocks.append(level)
            if i + 1 < levels:
                stride = 1 if (self.shuffle and i == 0) else 2
                enc.downs.append(conv3(cin, cin, stride))
        enc.mid = MidBlock(cin, c["mid_attention"]) if c["mid_block"] else None
        enc.norm_out = group_norm(cin)
        enc.conv_out = conv3(cin, 2 * self.latent_channels)
        self.encoder = enc

        top = dch(mult[-1])
        dec = nn.Module()
        dec.conv_in = conv3(self.latent_channels, top)
        dec.mid = MidBlock(top, c["mid_attention"]) if c["mid_block"] else None
        dec.blocks = nn.ModuleList()
        dec.ups = nn.ModuleList()
        cin = top
        for i in reversed(range(levels)):
            cout = dch(mult[i])
            level = nn.ModuleList()
            for _ in range(c["decoder_res_blocks"]):
                level.append(ResBlock(cin, cout))
                cin = cout
            dec.blocks.append(level)
            if i > 0:
                nxt = dch(mult[i - 1])
                dec.ups.append(conv3(cin, nxt))
                cin = nxt
        dec.norm_out = group_norm(cin)
        dec.conv_out = conv3(cin, 3 * pix)
        self.decoder = dec

    def encode(self, frames):
        e = self.encoder
        x = frames * 2.0 - 1.0
        if self.shuffle:
            x = F.pixel_unshuffle(x, 2)
        x = e.conv_in(x)
        for i, level in enumerate(e.blocks):
            for block in level:
                x = block(x)
            if i < len(e.downs):
                x = e.downs[i](x)
        if e.mid is not None:
            x = e.mid(x)
        x = e.conv_out(F.silu(e.norm_out(x)))
        c = self.latent_channels
        return x[:, :c], x[:, c:].clamp(-30.0, 20.0)

    def decode_raw(self, z):
        d = self.decoder
        x = d.conv_in(z)
        if d.mid is not None:
            x = d.mid(x)
        for i, level in enumerate(d.blocks):
            for block in level:
                x = block(x)
            if i < len(d.ups):
                last = i + 1 == len(d.ups)
                if not (self.shuffle and last):
                    x = F.interpolate(x, scale_factor=2, mode="nearest")
                x = d.ups[i](x)
        out = d.conv_out(F.silu(d.norm_out(x)))
        return F.pixel_shuffle(out, 2) if self.shuffle else out

    def loss(self, frames, eps):
        b, _, h, w = frames.shape
        mean, logvar = self.encode(frames)
        z = mean + torch.exp(logvar * 0.5) * eps
        recon = self.decode_raw(z)
        target = frames * 2.0 - 1.0
        l1 = (recon - target).abs().mean()
        dx = lambda t: t[:, :, :, 1:] - t[:, :, :, :-1]  # noqa: E731
        dy = lambda t: t[:, :, 1:, :] - t[:, :, :-1, :]  # noqa: E731
        structure = ((dx(recon) - dx(target)).abs().mean()
                     + (dy(recon) - dy(target)).abs().mean()) / 2.0
        kl = (mean.pow(2) + logvar.exp() - (logvar + 1.0)).sum() * (0.5 / (b * 3 * h * w))
        return l1 + structure * self.structure_weight + kl * self.kl_weight


def run_world_vae(args):
    cfg = load_world(args.world)
    vc = cfg["model"]["vae"]
    vae = Vae(vc)
    params = list(vae.parameters())
    # The `tiny` TrainConfig: lr 1e-3, warm-up 200, AdamW betas 0.9/0.99, wd 0.002, clip 1.0.
    opt = make_adamw(params, args, 1e-3, (0.9, 0.99), 0.002)
    n, h, w = args.vae_batch, vc["height"], vc["width"]
    f = 2 ** (len(vc["channel_mult"]) - 1)
    latent = (n, vc["latent_channels"], h // f, w // f)
    frames = torch.rand(n, 3, h, w)

    def step(i):
        for g in opt.param_groups:
            g["lr"] = warmup_lr(1e-3, 200, i)
        opt.zero_grad(set_to_none=True)
        loss = vae.loss(frames, gaussian(latent))
        loss.backward()
        clip_per_tensor(params, 1.0)
        opt.step()
        return loss.item()

    timed = time_steps(step, args.warmup, args.steps)
    gg = gamegen_params(os.path.join(args.world, "vae.safetensors"), skip_prefixes=("light.",))
    shapes = {"frames": [n, 3, h, w], "latent": list(latent),
              "pixel_shuffle": bool(vc.get("pixel_shuffle", False))}
    report("world-vae", timed, args, count_params(vae), gg, shapes,
           {"model": args.world, "game": cfg.get("game")})


# ---------------------------------------------------------------------------------------------
# world-dynamics (schedule.rs, model/dit.rs, model/world.rs, logicnet.rs, spatial.rs,
# train/diffusion.rs)


class Schedule:
    """`schedule.rs`: the 1000-step sigmoid schedule and the fused min-SNR weight, in f64."""

    def __init__(self, timesteps=1000, start=-3.0, end=3.0, tau=1.0, snr_clip=5.0):
        sig = lambda x: 1.0 / (1.0 + math.exp(-x))  # noqa: E731
        v_start, v_end = sig(start / tau), sig(end / tau)

        def abar_t(i):
            t = i / timesteps
            return (-sig((t * (end - start) + start) / tau) + v_end) / (v_end - v_start)

        a0 = abar_t(0)
        acc, self.abar = 1.0, []
        for i in range(timesteps):
            beta = min(max(1.0 - (abar_t(i + 1) / a0) / (abar_t(i) / a0), 0.0), 0.999)
            acc *= 1.0 - beta
            self.abar.append(acc)
        self.snr_clip = snr_clip
        self.timesteps = timesteps

    def coefficients(self, k):
        a = self.abar[min(k, self.timesteps - 1)]
        return math.sqrt(a), math.sqrt(1.0 - a)

    def snr(self, k):
        a = self.abar[min(k, self.timesteps - 1)]
        return a / (1.0 - a)

    def fused_v_loss_weight(self, k, cum, decay):
        clip = self.snr_clip
        snr = self.snr(k)
        norm_clipped = min(snr, clip) / clip
        norm = snr / clip
        if cum is None:
            return norm_clipped * clip / (norm * clip + 1.0), norm_clipped
        nxt = cum * decay + norm_clipped * (1.0 - decay)
        fused_clipped = 1.0 - (1.0 - cum * decay) * (1.0 - norm_clipped)
        fused = 1.0 - (1.0 - cum * decay) * (1.0 - norm)
        return fused_clipped * clip / (fused * clip + 1.0), nxt


def sinusoidal(values, dim):
    """`dit::sinusoidal`: `[cos(v f_i), sin(v f_i)]`, geometric `f_i`."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float64) / half)
    args = values.to(torch.float64)[:, None] * freqs[None]
    return torch.cat([args.cos(), args.sin()], dim=1).float()


def pos_embed_2d(gh, gw, dim):
    """`dit::pos_embed_2d`: half the channels encode the row, half the column."""
    quarter = dim // 4
    omega = 1.0 / 10000.0 ** (torch.arange(quarter, dtype=torch.float64) / quarter)
    rows = []
    for r in range(gh):
        for c in range(gw):
            parts = []
            for pos in (float(r), float(c)):
                parts += [(pos * omega).sin(), (pos * omega).cos()]
            rows.append(torch.cat(parts))
    return torch.stack(rows).float()


class DitBlock(nn.Module):
    def __init__(self, d, cond_dim, heads, mlp_ratio, attention):
        super().__init__()
        self.ada = nn.Linear(2 * cond_dim, 6 * d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.fc1 = nn.Linear(d, d * mlp_ratio)
        self.fc2 = nn.Linear(d * mlp_ratio, d)
        self.heads = heads
        self.attention = attention
        nn.init.zeros_(self.ada.weight)
        nn.init.zeros_(self.ada.bias)

    def attn(self, x):
        b, n, d = x.shape
        hd = d // self.heads
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, hd).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        if self.attention == "sdpa":
            out = F.scaled_dot_product_attention(q, k, v)
        else:
            out = torch.softmax(q @ k.transpose(2, 3) / math.sqrt(hd), dim=3) @ v
        return self.proj(out.transpose(1, 2).reshape(b, n, d))

    def forward(self, x, c):
        d = x.shape[2]
        shift1, scale1, gate1, shift2, scale2, gate2 = self.ada(c).unsqueeze(1).chunk(6, dim=2)
        h = F.layer_norm(x, (d,), eps=1e-6) * (scale1 + 1.0) + shift1
        x = x + gate1 * self.attn(h)
        h = F.layer_norm(x, (d,), eps=1e-6) * (scale2 + 1.0) + shift2
        return x + gate2 * self.fc2(F.gelu(self.fc1(h)))


class DitCell(nn.Module):
    def __init__(self, c, attention):
        super().__init__()
        d, p = c["hidden"], c["patch"]
        cin = c["z_channels"] + c["latent_channels"]
        cd = c["cond_dim"]
        self.c = c
        self.patch_embed = nn.Linear(cin * p * p, d)
        self.t_mlp1 = nn.Linear(c["freq_dim"], cd)
        self.t_mlp2 = nn.Linear(cd, cd)
        self.action_emb = nn.Embedding(c["num_actions"] + 1, cd)
        self.digit_emb = self.digit_pos = self.map_proj = self.map_pos = None
        if c["digit_tokens"] > 0:
            self.digit_emb = nn.Embedding(10, d)
            self.digit_pos = nn.Parameter(torch.randn(c["digit_tokens"], d) * 0.02)
        if c["map_tokens"] > 0:
            self.map_proj = nn.Linear(c["map_token_dim"], d)
            self.map_pos = nn.Parameter(torch.randn(c["map_tokens"], d) * 0.02)
        self.blocks = nn.ModuleList(
            DitBlock(d, cd, c["heads"], c["mlp_ratio"], attention) for _ in range(c["depth"]))
        self.final_ada = nn.Linear(2 * cd, 2 * d)
        self.final_linear = nn.Linear(d, p * p * c["z_channels"])
        for lin in (self.final_ada, self.final_linear):
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)
        self.out1 = conv1(c["z_channels"], c["z_channels"])
        self.out2 = conv1(c["z_channels"], c["z_channels"])
        self.gh, self.gw = c["latent_height"] // p, c["latent_width"] // p
        self.register_buffer("positions", pos_embed_2d(self.gh, self.gw, d)[None],
                             persistent=False)

    def condition(self, actions, digits, map_features):
        """(action embedding [B, cond], extra tokens [B, e, d] or None)."""
        action = self.action_emb(actions)
        extra = []
        if self.digit_emb is not None:
            extra.append(self.digit_emb(digits) + self.digit_pos[None])
        if self.map_proj is not None:
            extra.append(self.map_proj(map_features) + self.map_pos[None])
        return action, (torch.cat(extra, dim=1) if extra else None)

    def forward(self, z_prev, x_noisy, levels, action, extra):
        c = self.c
        b = z_prev.shape[0]
        p, gh, gw = c["patch"], self.gh, self.gw
        t_emb = self.t_mlp2(F.silu(self.t_mlp1(sinusoidal(levels, c["freq_dim"]))))
        cond = F.silu(torch.cat([t_emb, action], dim=1))
        x = torch.cat([z_prev, x_noisy], dim=1)
        ch = x.shape[1]
        x = x.reshape(b, ch, gh, p, gw, p).permute(0, 2, 4, 1, 3, 5).reshape(b, gh * gw, ch * p * p)
        x = self.patch_embed(x) + self.positions
        if extra is not None:
            x = torch.cat([x, extra], dim=1)
        for block in self.blocks:
            x = block(x, cond)
        shift, scale = self.final_ada(cond).unsqueeze(1).chunk(2, dim=2)
        x = x[:, : gh * gw]
        x = F.layer_norm(x, (x.shape[2],), eps=1e-6) * (scale + 1.0) + shift
        zc = c["z_channels"]
        grid = self.final_linear(x).reshape(b, gh, gw, zc, p, p).permute(0, 3, 1, 4, 2, 5)
        grid = grid.reshape(b, zc, gh * p, gw * p)
        return self.out2(torch.tanh(self.out1(grid)))


class VHead(nn.Module):
    def __init__(self, z_channels, latent_channels):
        super().__init__()
        self.res = ResBlock(z_channels, latent_channels)
        self.out = conv1(latent_channels, latent_channels)

    def forward(self, z):
        return self.out(self.res(z))


class LogicNet(nn.Module):
    def __init__(self, c):
        super().__init__()
        c1, c2 = c["conv_channels"]
        self.conv1 = conv3(c["z_channels"], c1, 2)
        self.conv2 = conv3(c1, c2, 2)
        self.action = nn.Embedding(c["num_actions"] + 1, c["action_dim"])
        self.fc1 = nn.Linear(c2 + c["action_dim"], c["mlp_hidden"])
        self.fc2 = nn.Linear(c["mlp_hidden"], c["mlp_hidden"])
        self.out = nn.Linear(c["mlp_hidden"], c["num_events"])

    def forward(self, z_prev, actions):
        h = F.silu(self.conv2(F.silu(self.conv1(z_prev))))
        pooled = h.flatten(2).mean(dim=2)
        x = F.silu(self.fc1(torch.cat([pooled, self.action(actions)], dim=1)))
        return self.out(F.silu(self.fc2(x)))


class MapEncoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        ch = c["channels"]
        self.convs = nn.ModuleList(
            [conv3(3, ch[0])] + [conv3(ch[i], ch[i + 1]) for i in range(4)])
        self.token_grid = tuple(c["token_grid"])

    def forward(self, crops):
        x = crops
        for i, conv in enumerate(self.convs):
            x = F.silu(conv(x))
            if i < 4:
                x = F.max_pool2d(x, 2, 2, ceil_mode=True)
        x = F.adaptive_avg_pool2d(x, self.token_grid)
        return x.flatten(2).transpose(1, 2)


class WorldModel(nn.Module):
    def __init__(self, cfg, attention):
        super().__init__()
        m = cfg["model"]
        d = m["dit"]
        self.dit = DitCell(d, attention)
        self.head = VHead(d["z_channels"], d["latent_channels"])
        h, w = d["latent_height"], d["latent_width"]
        self.init_z = nn.Parameter(torch.randn(d["z_channels"], h, w) * math.sqrt(2.0 / (h * w)))
        self.logic = LogicNet(m["logic"]) if m.get("logic") else None
        sp = m.get("spatial")
        self.map_encoder = MapEncoder(sp["encoder"]) if sp else None


def score_digits(scores):
    """`record::score_digits` for a tensor of scores: the last three decimal digits."""
    s = scores % 1000
    return torch.stack([s // 100 % 10, s // 10 % 10, s % 10], dim=-1)


def run_world_dynamics(args):
    cfg = load_world(args.world)
    m = cfg["model"]
    dc = m["dit"]
    logic_cfg = m.get("logic")
    spatial = m.get("spatial")
    model = WorldModel(cfg, args.attention)
    params = list(model.parameters())
    # The `tiny` TrainConfig: lr 1e-3, warm-up 200, betas 0.9/0.99, wd 0.002, clip 1.0,
    # cum_snr_decay 0.96, first frame clean with probability 0.5.
    opt = make_adamw(params, args, 1e-3, (0.9, 0.99), 0.002)
    sched = Schedule()
    decay, first_clean = 0.96, 0.5
    b, t = args.batch, args.clip_len
    c, h, w = dc["latent_channels"], dc["latent_height"], dc["latent_width"]
    na = dc["num_actions"]
    no_action = na

    # The batch (gamegen: the latent cache, the episode's actions/events/scores, the local maps
    # replayed from the recorded positions), made once outside the timed region.
    latents = torch.randn(b, t, c, h, w)
    actions = torch.randint(0, na, (b, t))
    actions[:, 0] = no_action  # frame 0 is conditioned on "no previous action"
    num_events = logic_cfg["num_events"] if logic_cfg else 0
    events = torch.randint(0, 1 << max(num_events, 1), (b, t))
    event_bits = torch.stack([(events >> i) & 1 for i in range(num_events)], dim=-1).float() \
        if num_events else None
    digits = score_digits(torch.randint(0, 1000, (b, t)))
    crops = None
    if spatial:
        e = spatial["encoder"]
        crops = torch.rand(b, t, 3, e["crop_height"], e["crop_width"])
    lw = logic_cfg["loss_weight"] if logic_cfg else 0.0

    def step(i):
        for g in opt.param_groups:
            g["lr"] = warmup_lr(1e-3, 200, i)
        opt.zero_grad(set_to_none=True)
        # The step's noise: levels per frame, first frame clean with p = 0.5, Gaussian noise.
        levels = torch.randint(0, sched.timesteps, (b, t))
        levels[:, 0] = torch.where(torch.rand(b) < first_clean, 0, levels[:, 0])
        eps = gaussian((t, b, c, h, w))
        lv = levels.tolist()
        z = model.init_z.unsqueeze(0).expand(b, -1, -1, -1)
        cum = [None] * b
        weighted, logic_terms = [], []
        for ti in range(t):
            x0 = latents[:, ti]
            coef = [sched.coefficients(lv[bi][ti]) for bi in range(b)]
            wts = []
            for bi in range(b):
                wgt, cum[bi] = sched.fused_v_loss_weight(lv[bi][ti], cum[bi], decay)
                wts.append(wgt)
            sa = torch.tensor([a for a, _ in coef]).view(b, 1, 1, 1)
            sb = torch.tensor([s for _, s in coef]).view(b, 1, 1, 1)
            x_noisy = x0 * sa + eps[ti] * sb
            v_target = eps[ti] * sa - x0 * sb
            act = actions[:, ti]
            if model.logic is not None and ti > 0:
                logits = model.logic(z, act)
                logic_terms.append(F.binary_cross_entropy_with_logits(logits, event_bits[:, ti]))
            map_features = model.map_encoder(crops[:, ti]) if model.map_encoder is not None \
                else None
            action_emb, extra = model.dit.condition(act, digits[:, ti], map_features)
            z_new = model.dit(z, x_noisy, levels[:, ti], action_emb, extra)
            v = model.head(z_new)
            mse = (v - v_target).pow(2).reshape(b, -1).mean(dim=1, keepdim=True)
            weighted.append(mse * torch.tensor(wts).view(b, 1))
            z = z_new
        per_frame = torch.cat(weighted, dim=1)
        diffusion = per_frame.mean()
        total = diffusion
        if logic_terms:
            total = total + torch.stack(logic_terms).sum() / len(logic_terms) * lw
        total.backward()
        clip_per_tensor(params, 1.0)
        opt.step()
        per_frame.detach().mean(dim=1).tolist()  # per-clip losses for the long-tail sampler
        return total.item()

    timed = time_steps(step, args.warmup, args.steps)
    gg = gamegen_params(os.path.join(args.world, "dynamics.safetensors"))
    extra_tokens = dc["digit_tokens"] + dc["map_tokens"]
    shapes = {
        "clips": b, "clip_len": t, "latent": [c, h, w],
        "tokens": model.dit.gh * model.dit.gw + extra_tokens,
        "grid_tokens": model.dit.gh * model.dit.gw,
        "hidden": dc["hidden"], "depth": dc["depth"], "heads": dc["heads"],
        "map_crop": list(crops.shape[2:]) if crops is not None else None,
        "logicnet": model.logic is not None,
    }
    report("world-dynamics", timed, args, count_params(model), gg, shapes,
           {"model": args.world, "game": cfg.get("game"), "attention": args.attention})


# ---------------------------------------------------------------------------------------------
# bytecraft (core/src/bytecraft/train.rs)


def run_bytecraft(args):
    from transformers import AutoConfig, Qwen2ForCausalLM

    config = AutoConfig.from_pretrained(args.bytecraft)
    config.use_cache = False
    model = Qwen2ForCausalLM._from_config(
        config, attn_implementation=args.lm_attention, dtype=torch.float32)
    model.train()
    params = [p for p in model.parameters()]
    params = list({id(p): p for p in params}.values())
    # LmTrainConfig::default(): lr 2e-3, warm-up 50, betas 0.9/0.95, wd 0.01, clip 1.0.
    opt = make_adamw(params, args, 2e-3, (0.9, 0.95), 0.01)
    bsz, n = args.lm_batch, args.lm_len
    vocab = config.vocab_size
    inputs = torch.randint(0, vocab, (bsz, n))
    targets = torch.randint(0, vocab, (bsz, n))
    mask = torch.ones(bsz, n)
    predicted = int(mask.sum())

    def step(i):
        for g in opt.param_groups:
            g["lr"] = warmup_lr(2e-3, 50, i)
        opt.zero_grad(set_to_none=True)
        logits = model(input_ids=inputs, use_cache=False).logits
        nll = F.cross_entropy(logits.reshape(-1, vocab), targets.reshape(-1), reduction="none")
        loss = (nll * mask.reshape(-1)).sum() / predicted
        loss.backward()
        clip_per_tensor(params, 1.0)
        opt.step()
        return loss.item()

    timed = time_steps(step, args.warmup, args.steps)
    gg = gamegen_params(os.path.join(args.bytecraft, "model.safetensors"))
    shapes = {"batch": bsz, "len": n, "vocab": vocab, "hidden": config.hidden_size,
              "layers": config.num_hidden_layers, "heads": config.num_attention_heads,
              "kv_heads": config.num_key_value_heads, "intermediate": config.intermediate_size,
              "tied_head": bool(config.tie_word_embeddings)}
    report("bytecraft", timed, args, count_params(model), gg, shapes,
           {"model": args.bytecraft, "attention": model.config._attn_implementation,
            "transformers": __import__("transformers").__version__})


# ---------------------------------------------------------------------------------------------


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--step", nargs="+", default=["all"],
                   choices=["all", "world-vae", "world-dynamics", "bytecraft"])
    p.add_argument("--world", default="models/world-pong", help="a gamegen-world model dir")
    p.add_argument("--bytecraft", default="models/bytecraft-mini", help="a ByteCraft model dir")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--vae-batch", type=int, default=16, help="frames per VAE step")
    p.add_argument("--batch", type=int, default=8, help="clips per dynamics step")
    p.add_argument("--clip-len", type=int, default=8, help="frames per clip")
    p.add_argument("--lm-batch", type=int, default=8)
    p.add_argument("--lm-len", type=int, default=1024)
    p.add_argument("--attention", choices=["sdpa", "math"], default="sdpa",
                   help="DiT attention: fused SDPA, or matmul-softmax-matmul as gamegen trains")
    p.add_argument("--lm-attention", default="sdpa", help="transformers attn_implementation")
    p.add_argument("--adamw", choices=["fused", "foreach", "loop"], default="fused",
                   help="torch.optim.AdamW implementation")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    steps = ["world-vae", "world-dynamics", "bytecraft"] if "all" in a.step else a.step
    for s in steps:
        {"world-vae": run_world_vae, "world-dynamics": run_world_dynamics,
         "bytecraft": run_bytecraft}[s](a)


if __name__ == "__main__":
    main()

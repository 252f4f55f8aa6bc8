"""Speed of block-CS reconstruction with ISTA-Net+ (and ISTA-Net, ResNet-PGD): one 256×256 image at 25 %.

Reports, per model and execution mode (fp32, channels-last, bf16 autocast, torch.compile): the median
wall time of ``model(y)`` over ``--repeats`` runs, its FLOP count (2 × multiply–accumulates of the 3×3
convolutions, the Φ/Φᵀ products of every phase and the Qinit product; element-wise ops left out), the
achieved GFLOP/s, and that as a fraction of this machine's convolution throughput, measured in the same
run as the best of a 32→32-channel 3×3 convolution on a (64, 32, 33, 33) batch — the layer that
dominates ISTA-Net+. bf16 rows also give the PSNR change vs fp32 on the image. Paper: 1.375 s (CPU).
Training-step time (batch 64, loss with the symmetry term: fp32, channels-last, bf16 autocast, both, and with
``--compile`` bf16 + torch.compile) is measured too. Writes
``benchmarks/results/istanet_speed.json``.

    python benchmarks/bench_istanet_speed.py [--threads 2] [--repeats 7] [--compile]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from proxlab import metrics
from proxlab.losses import istanet_loss
from proxlab.data import skimage_image
from proxlab.registry import build_model
from proxlab.unrolled.istanet import conv_macs_per_pixel
from proxlab.zoo import list_zoo, load_zoo_model

PAPER_CPU_SECONDS = 1.375


def timeit(fn, repeats: int) -> float:
    fn()  # warm-up
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def conv_throughput(repeats: int) -> float:
    """GFLOP/s of the best of fp32 NCHW / channels-last for one 32→32 3×3 convolution (batch 64 of 33×33)."""
    conv = torch.nn.Conv2d(32, 32, 3, padding=1, bias=False).eval()
    x = torch.randn(64, 32, 33, 33)
    flops = 2 * 32 * 32 * 9 * x.shape[0] * 33 * 33
    best = float("inf")
    with torch.no_grad():
        for cl in (False, True):
            xx = x.contiguous(memory_format=torch.channels_last) if cl else x
            m = conv.to(memory_format=torch.channels_last) if cl else conv
            best = min(best, timeit(lambda: m(xx), repeats * 3))
    return flops / best / 1e9


def model_flops(model, H: int, W: int) -> float:
    b = model.operator.block
    hb, wb = -(-H // b), -(-W // b)
    pixels = hb * wb * b * b
    n, m = b * b, model.operator.m
    matmul = hb * wb * (n * m + model.stages * 2 * n * m)  # Qinit, then Φ and Φᵀ per phase
    return 2.0 * (conv_macs_per_pixel(model) * pixels + matmul)


def psnr(a, b) -> float:
    return float(metrics.psnr(a.double(), b.double()))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--compile", action="store_true", help="also time torch.compile (slow to compile on CPU)")
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "istanet_speed.json"))
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    x = skimage_image("astronaut", grey=True, size=256)
    peak = conv_throughput(a.repeats)
    print(f"conv 32->32 3x3 throughput on {a.threads} thread(s): {peak:.1f} GFLOP/s")
    rows = []
    names = [("istanet-plus-cs25", "zoo"), ("istanet-cs25", "zoo"), ("resnet-pgd-cs25", "zoo")]
    for name, _ in names:
        if name in list_zoo():
            model, _ = load_zoo_model(name)
        else:  # untrained weights time the same
            kind = name.rsplit("-cs", 1)[0]
            model = build_model("istanet", ratio=0.25, plus=kind == "istanet-plus") if kind != "resnet-pgd" \
                else build_model("resnet-pgd", ratio=0.25)
            name += " (untrained)"
        model.eval()
        A = model.operator.resized((256, 256))
        y = A(x)
        flops = model_flops(model, 256, 256)
        with torch.no_grad():
            ref = model(y, image_size=(256, 256)).clamp(0, 1)
        modes = {"fp32": (model, False), "channels-last": (model, False), "bf16": (model, True)}
        for mode, (net, bf16) in modes.items():
            if mode == "channels-last":
                net = model.to(memory_format=torch.channels_last)

            def run(net=net, bf16=bf16):
                with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    return net(y, image_size=(256, 256))

            t = timeit(run, a.repeats)
            d_psnr = psnr(run().float().clamp(0, 1), x) - psnr(ref, x)
            model.to(memory_format=torch.contiguous_format)
            rows.append({"model": name, "mode": mode, "seconds": t, "gflop": flops / 1e9, "gflops_per_s": flops / t / 1e9,
                         "fraction_of_conv_peak": flops / t / 1e9 / peak, "psnr_change_db": d_psnr,
                         "speedup_vs_paper_cpu": PAPER_CPU_SECONDS / t})
        if a.compile:
            cnet = torch.compile(model)
            t_c0 = time.perf_counter()
            with torch.no_grad():
                cnet(y, image_size=(256, 256))
            compile_s = time.perf_counter() - t_c0
            with torch.no_grad():
                t = timeit(lambda: cnet(y, image_size=(256, 256)), a.repeats)
            rows.append({"model": name, "mode": f"compile (first call {compile_s:.0f} s)", "seconds": t,
                         "gflop": flops / 1e9, "gflops_per_s": flops / t / 1e9,
                         "fraction_of_conv_peak": flops / t / 1e9 / peak, "psnr_change_db": 0.0,
                         "speedup_vs_paper_cpu": PAPER_CPU_SECONDS / t})
    # training step (batch 64 of 33x33 blocks), ISTA-Net+
    train = []
    net = build_model("istanet", ratio=0.25, plus=True)
    xb = torch.rand(64, 1, 33, 33)
    yb = net.operator(xb)
    opt = torch.optim.Adam(net.parameters(), 1e-4)
    train_modes = ["fp32", "channels-last", "bf16", "bf16+channels-last"] + (["bf16+compile"] if a.compile else [])
    for mode in train_modes:
        net.train()
        cl = "channels-last" in mode
        if cl:
            net.to(memory_format=torch.channels_last)
        xx = xb.contiguous(memory_format=torch.channels_last) if cl else xb
        fwd = torch.compile(net) if "compile" in mode else net
        t_first = time.perf_counter()

        def step(fwd=fwd, xx=xx, bf16="bf16" in mode):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                out = fwd(yb, return_aux=True)  # the symmetry terms come back with the output
                loss = istanet_loss(out.x, xx, out.aux, gamma=0.01)
            opt.zero_grad()
            loss.backward()
            opt.step()

        step()
        first = time.perf_counter() - t_first
        train.append({"mode": mode, "seconds_per_step": timeit(step, max(2, a.repeats // 2)), "first_step_seconds": first})
        net.to(memory_format=torch.contiguous_format)
    print(f"\n256x256 at 25 %, {a.threads} thread(s); paper (CPU): {PAPER_CPU_SECONDS} s")
    print(f"{'model':28s} {'mode':26s} {'s':>7s} {'GFLOP':>6s} {'GFLOP/s':>8s} {'of conv peak':>12s} {'dPSNR':>7s}")
    for r in rows:
        print(f"{r['model']:28s} {r['mode']:26s} {r['seconds']:7.3f} {r['gflop']:6.1f} {r['gflops_per_s']:8.1f} "
              f"{r['fraction_of_conv_peak']:12.0%} {r['psnr_change_db']:+7.3f}")
    print("\nISTA-Net+ training step, batch 64:")
    for r in train:
        print(f"  {r['mode']:20s} {r['seconds_per_step']:.3f} s  ({train[0]['seconds_per_step'] / r['seconds_per_step']:.2f}x fp32; "
              f"first step {r['first_step_seconds']:.1f} s)")
    out = {"threads": a.threads, "conv_peak_gflops": peak, "paper_cpu_seconds": PAPER_CPU_SECONDS, "inference": rows,
           "training_step": train}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=2))
    print(f"\nwrote {a.out}")


if __name__ == "__main__":
    main()

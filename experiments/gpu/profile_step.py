"""Where a neural training step's time goes on a device: B2 (lq_gaussian) at the given dimensions.

For each d: a Trainer (float32, the solver's defaults, Hutchinson above d = 6) takes ``--warmup``
steps, then ``--steps`` steps under ``torch.profiler``; prints the wall per step, the device
(kernel) time per step, the number of kernel launches per step and of host-device
synchronisations, and the top operators by device time.  The ratio of kernel time to wall says
whether a step is bound by arithmetic or by launches and host overhead.

    python experiments/gpu/profile_step.py --device cuda --dims 10 100
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.profiler import ProfilerActivity, profile

from mfgnet.benchmarks.lq_gaussian import lq_gaussian
from mfgnet.neural.config import NeuralSolverConfig
from mfgnet.neural.trainer import Trainer


def profile_dim(d: int, device: str, n_interior: int, warmup: int, steps: int, top: int) -> dict:
    cfg = NeuralSolverConfig.from_dict({"device": device, "dtype": "float32", "progress": False,
                                        "steps": warmup + steps, "sampler": {"n_interior": n_interior}})
    trainer = Trainer(lq_gaussian(d).problem, cfg)
    trainer.begin()
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    for _ in range(warmup):
        trainer.train_step()
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        trainer.train_step()
    sync()
    wall = (time.perf_counter() - start) / steps
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    with profile(activities=activities) as prof:
        for _ in range(steps):
            trainer.train_step()
        sync()
    events = prof.key_averages()
    kernel_us = sum(e.self_device_time_total for e in events) if device == "cuda" else 0.0
    launches = sum(e.count for e in events if e.key in ("cudaLaunchKernel", "cuLaunchKernel", "cudaLaunchKernelExC"))
    syncs = sum(e.count for e in events if e.key in ("cudaStreamSynchronize", "cudaDeviceSynchronize",
                                                       "cudaMemcpyAsync"))
    sort = "self_device_time_total" if device == "cuda" else "self_cpu_time_total"
    print(f"\n== d = {d}, {n_interior} interior points, {device}")
    print(events.table(sort_by=sort, row_limit=top))
    row = {"d": d, "device": device, "n_interior": n_interior, "wall_per_step_s": wall,
           "kernel_per_step_s": kernel_us / 1e6 / steps, "launches_per_step": launches / steps,
           "memcpy_or_sync_per_step": syncs / steps}
    print(row, flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dims", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--n-interior", type=int, default=2048)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    rows = [profile_dim(d, args.device, args.n_interior, args.warmup, args.steps, args.top) for d in args.dims]
    print("\n| d | wall/step s | kernels/step s | kernel share | launches/step | memcpy+sync/step |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        share = r["kernel_per_step_s"] / r["wall_per_step_s"] if r["wall_per_step_s"] else float("nan")
        print(f"| {r['d']} | {r['wall_per_step_s']:.4f} | {r['kernel_per_step_s']:.4f} | {share:.2f} | "
              f"{r['launches_per_step']:.0f} | {r['memcpy_or_sync_per_step']:.0f} |")


if __name__ == "__main__":
    main()

"""Data-parallel training with torch DistributedDataParallel (gloo, 2 CPU processes) and polyloss.

A small two-head model (5-class logits and a 3-value regression) trains for a few SGD steps on
a batch of 32 split unevenly across 2 ranks (20 and 12 samples). The classification loss is
``polyloss.cross_entropy`` with ``ignore_index`` and class weights under torch's weighted-mean
rule (``normalizer="sum_of_weights"``); the ranks hold different numbers of ignored labels, so
the mean of the ranks' means is not the batch's mean. Each rank takes the loss's two parts
(``reduction="parts"``) and ``polyloss.distributed.torch_ddp_loss`` sums the normalisers
across the ranks, so DDP's gradient average is the gradient of the single-process mean.

Prints one JSON object: the largest parameter difference from a single-process run on the
whole batch, absolute and relative to each tensor's largest entry, and the same for the
naive per-rank mean; exits 1 if the global-normaliser run is off by more than 1e-12.

    python examples/distributed_torch.py [--steps 5]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import polyloss
from polyloss.distributed import torch_ddp_loss

WORLD = 2
SHARDS = (slice(0, 20), slice(20, 32))  # uneven on purpose
IGNORE = -1
LR = 0.5


def make_data() -> dict:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(32, 8))
    labels = rng.integers(0, 5, size=32)
    labels[[0, 3, 4, 9, 13, 17, 21]] = IGNORE  # 6 ignored on rank 0, 1 on rank 1
    return {"x": x, "labels": labels, "targets": rng.normal(size=(32, 3)),
            "class_weight": np.array([0.5, 1.0, 2.0, 1.5, 0.75])}


def make_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 8)).double()


def losses(model, data, rows, reduction):
    x = torch.from_numpy(data["x"][rows])
    out = model(x)
    ce = polyloss.cross_entropy(
        out[:, :5], torch.from_numpy(data["labels"][rows]), ignore_index=IGNORE,
        class_weight=torch.from_numpy(data["class_weight"]), normalizer="sum_of_weights",
        reduction=reduction)
    mse = polyloss.mse(out[:, 5:], torch.from_numpy(data["targets"][rows]), reduction=reduction)
    return ce, mse


def train_single(data: dict, steps: int) -> list[np.ndarray]:
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    for _ in range(steps):
        ce, mse = losses(model, data, slice(None), "mean")
        opt.zero_grad()
        (ce + mse).backward()
        opt.step()
    return [p.detach().numpy().copy() for p in model.parameters()]


def train_ddp(rank: int, init_file: str, data: dict, steps: int, out_file: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        result = {}
        for name in ("global", "naive"):
            model = torch.nn.parallel.DistributedDataParallel(make_model())
            opt = torch.optim.SGD(model.parameters(), lr=LR)
            for _ in range(steps):
                if name == "global":
                    ce, mse = losses(model, data, SHARDS[rank], "parts")
                    loss = torch_ddp_loss(ce) + torch_ddp_loss(mse)
                else:  # each rank's own mean, averaged by DDP: what a plain port computes
                    ce, mse = losses(model, data, SHARDS[rank], "mean")
                    loss = ce + mse
                opt.zero_grad()
                loss.backward()
                opt.step()
            result[name] = [p.detach().numpy().copy() for p in model.module.parameters()]
        if rank == 0:
            np.savez(out_file, **{f"{k}{i}": v for k in result for i, v in enumerate(result[k])})
    finally:
        dist.destroy_process_group()


def differences(params: list[np.ndarray], reference: list[np.ndarray]) -> tuple[float, float]:
    abs_diff = max(float(np.max(np.abs(p - r))) for p, r in zip(params, reference, strict=True))
    rel_diff = max(float(np.max(np.abs(p - r)) / np.max(np.abs(r)))
                   for p, r in zip(params, reference, strict=True))
    return abs_diff, rel_diff


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    data = make_data()
    single = train_single(data, args.steps)
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")  # the ranks talk over loopback only
    with tempfile.TemporaryDirectory() as tmp:
        init_file, out_file = os.path.join(tmp, "init"), os.path.join(tmp, "params.npz")
        mp.spawn(train_ddp, args=(init_file, data, args.steps, out_file), nprocs=WORLD, join=True)
        saved = np.load(out_file)
        ddp = {k: [saved[f"{k}{i}"] for i in range(len(single))] for k in ("global", "naive")}
    abs_diff, rel_diff = differences(ddp["global"], single)
    naive_abs, naive_rel = differences(ddp["naive"], single)
    print(json.dumps({"engine": "torch DDP, gloo, 2 processes", "steps": args.steps,
                      "max_abs": abs_diff, "max_rel": rel_diff,
                      "naive_max_abs": naive_abs, "naive_max_rel": naive_rel}))
    return 0 if rel_diff <= 1e-12 else 1


if __name__ == "__main__":
    sys.exit(main())

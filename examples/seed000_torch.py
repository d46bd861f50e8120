"""Seed 000's training runs on PyTorch: polyloss losses on torch tensors, ``torch.optim.Adam``.

Float64 tensors, autograd through the polyloss loss, ``torch.optim.Adam(lr=0.1, eps=0)`` (see
``_seed000`` for why eps is 0). Run: ``python examples/seed000_torch.py [OUT_DIR]``.
"""

from __future__ import annotations

import sys

import _seed000 as seed
import numpy as np
import torch


def train(run: seed.Run, x: np.ndarray, y: np.ndarray, w0: np.ndarray, epochs: int,
          eps: float) -> tuple[list[float], list[np.ndarray]]:
    """Full-batch Adam on ``x @ w``: the loss per epoch (before the step) and the weights."""
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    w = torch.tensor(w0, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([w], lr=seed.LR, betas=(seed.BETA1, seed.BETA2), eps=eps)
    losses, weights = [], [w.detach().numpy().copy()]
    for _ in range(epochs):
        loss = run.loss(xt @ w, yt)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        weights.append(w.detach().numpy().copy())
    return losses, weights


if __name__ == "__main__":
    sys.exit(seed.main("torch", train))

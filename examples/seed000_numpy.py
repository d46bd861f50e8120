"""Seed 000's training runs on NumPy: polyloss losses, hand-written gradients, hand-written Adam.

NumPy has neither autograd nor an optimizer, so the gradient of each loss with respect to the
prediction (or logit) is written out below, and Adam is :func:`_seed000.adam_numpy`. The loss
values themselves are polyloss's. Run: ``python examples/seed000_numpy.py [OUT_DIR]``.
"""

from __future__ import annotations

import sys

import _seed000 as seed
import numpy as np


def _log_sigmoid(z: np.ndarray) -> np.ndarray:
    """``log σ(z)`` without overflow: ``-softplus(-z)``."""
    return -np.logaddexp(0.0, -z)


def loss_gradient(run: seed.Run, p: np.ndarray, y: np.ndarray) -> np.ndarray:
    """d(mean loss)/d(prediction or logit), elementwise; matches polyloss's losses (mean over n)."""
    n = p.size
    r = p - y
    if run.name == "mae":
        return np.sign(r) / n  # 0 at a zero residual, as polyloss (and torch's abs)
    if run.name == "mse":
        return 2.0 * r / n
    if run.name == "huber":
        delta = 0.5
        return np.where(np.abs(r) <= delta, r, delta * np.sign(r)) / n
    if run.name == "bce":  # from logits: σ(z) - y
        return (1.0 / (1.0 + np.exp(-p)) - y) / n
    if run.name == "focal":
        # FL = -(1-p_t)^γ log p_t with p_t = σ(s·z), s = 2y-1;
        # dFL/dz = s·(1-p_t)^γ·(γ·p_t·log p_t - (1-p_t))
        gamma = 5.0
        s = 2.0 * y - 1.0
        log_pt = _log_sigmoid(s * p)
        pt = np.exp(log_pt)
        one_m = 1.0 - pt
        return s * one_m ** gamma * (gamma * pt * log_pt - one_m) / n
    raise ValueError(run.name)


def train(run: seed.Run, x: np.ndarray, y: np.ndarray, w0: np.ndarray, epochs: int,
          eps: float) -> tuple[list[float], list[np.ndarray]]:
    """Full-batch Adam on ``x @ w``: the loss per epoch (before the step) and the weights."""
    w = w0.copy()
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    losses, weights = [], [w.copy()]
    for t in range(1, epochs + 1):
        p = x @ w
        losses.append(float(run.loss(p, y)))
        grad = x.T @ loss_gradient(run, p, y)
        w, m, v = seed.adam_numpy(w, grad, m, v, t, eps)
        weights.append(w.copy())
    return losses, weights


if __name__ == "__main__":
    sys.exit(seed.main("numpy", train))

"""Seed 000's training runs on MXNet Gluon: polyloss losses on NDArrays, ``gluon.Trainer(..., 'adam')``.

A float64 ``gluon.Parameter``, ``autograd.record()`` through the polyloss loss, ``loss.backward()``,
``Trainer.step(1)`` (the loss is already the batch mean) with Adam lr 0.1, epsilon 0 (MXNet adds
epsilon to ``sqrt(v)`` like Keras; see ``_seed000``). ``polyloss.backends.mxnet`` is imported
before mxnet: it restores ``numpy.bool`` that MXNet 1.9.1 needs on NumPy >= 1.24.
Run: ``python examples/seed000_gluon.py [OUT_DIR]``.
"""

from __future__ import annotations

import sys

import numpy as np

import polyloss.backends.mxnet  # noqa: F401  (before mxnet: numpy.bool shim)

# isort: split
import _seed000 as seed
import mxnet as mx
from mxnet import autograd, gluon


def train(run: seed.Run, x: np.ndarray, y: np.ndarray, w0: np.ndarray, epochs: int,
          eps: float) -> tuple[list[float], list[np.ndarray]]:
    """Full-batch Adam on ``x @ w``: the loss per epoch (before the step) and the weights."""
    xm = mx.nd.array(x, dtype="float64")
    ym = mx.nd.array(y, dtype="float64")
    w = gluon.Parameter("w", shape=w0.shape, dtype="float64")
    w.initialize(init=mx.init.Zero())
    w.set_data(mx.nd.array(w0, dtype="float64"))
    trainer = gluon.Trainer({"w": w}, "adam", {"learning_rate": seed.LR, "beta1": seed.BETA1,
                                               "beta2": seed.BETA2, "epsilon": eps})
    losses, weights = [], [w.data().asnumpy().copy()]
    for _ in range(epochs):
        with autograd.record():
            loss = run.loss(mx.nd.dot(xm, w.data()), ym)
        loss.backward()
        trainer.step(1)
        losses.append(float(loss.asscalar()))
        weights.append(w.data().asnumpy().copy())
    return losses, weights


if __name__ == "__main__":
    sys.exit(seed.main("gluon", train))

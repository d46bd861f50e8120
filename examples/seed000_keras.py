"""Seed 000's training runs on TensorFlow/Keras: polyloss losses on TF tensors, ``keras.optimizers.Adam``.

Keras 3 on its TensorFlow backend: a float64 ``keras.Variable``, ``tf.GradientTape`` through
the polyloss loss, ``keras.optimizers.Adam(0.1, epsilon=0)`` (Keras adds epsilon to
``sqrt(v)``, torch to ``sqrt(v̂)``; with 0 they are one formula, see ``_seed000``).
Run: ``python examples/seed000_keras.py [OUT_DIR]``.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import _seed000 as seed  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def train(run: seed.Run, x: np.ndarray, y: np.ndarray, w0: np.ndarray, epochs: int,
          eps: float) -> tuple[list[float], list[np.ndarray]]:
    """Full-batch Adam on ``x @ w``: the loss per epoch (before the step) and the weights."""
    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(f"this example needs KERAS_BACKEND=tensorflow, not {keras.backend.backend()}")
    xt, yt = tf.constant(x), tf.constant(y)
    w = keras.Variable(w0, dtype="float64", name="w")
    opt = keras.optimizers.Adam(learning_rate=seed.LR, beta_1=seed.BETA1, beta_2=seed.BETA2, epsilon=eps)

    def step() -> tf.Tensor:  # eager: a tf.function trace per run costs more than these few steps
        with tf.GradientTape() as tape:
            loss = run.loss(tf.matmul(xt, w.value), yt)
        opt.apply_gradients([(tape.gradient(loss, w.value), w)])
        return loss

    losses, weights = [], [w.numpy().copy()]
    for _ in range(epochs):
        losses.append(float(step()))
        weights.append(w.numpy().copy())
    return losses, weights


if __name__ == "__main__":
    sys.exit(seed.main("keras", train))

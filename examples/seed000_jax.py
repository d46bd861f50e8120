"""Seed 000's training runs on JAX: polyloss losses on jax arrays, ``optax.adam``.

Float64 (``jax_enable_x64``), ``jax.value_and_grad`` through the polyloss loss, one jitted
step, ``optax.adam(0.1, eps=0)`` (see ``_seed000`` for why eps is 0).
Run: ``python examples/seed000_jax.py [OUT_DIR]``.
"""

from __future__ import annotations

import sys

import jax

jax.config.update("jax_enable_x64", True)

import _seed000 as seed  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402


def train(run: seed.Run, x: np.ndarray, y: np.ndarray, w0: np.ndarray, epochs: int,
          eps: float) -> tuple[list[float], list[np.ndarray]]:
    """Full-batch Adam on ``x @ w``: the loss per epoch (before the step) and the weights."""
    xj, yj = jnp.asarray(x), jnp.asarray(y)
    opt = optax.adam(seed.LR, b1=seed.BETA1, b2=seed.BETA2, eps=eps)

    @jax.jit
    def step(w: jax.Array, state: optax.OptState) -> tuple[jax.Array, optax.OptState, jax.Array]:
        loss, grad = jax.value_and_grad(lambda w: run.loss(xj @ w, yj))(w)
        updates, state = opt.update(grad, state, w)
        return optax.apply_updates(w, updates), state, loss

    w = jnp.asarray(w0)
    state = opt.init(w)
    losses, weights = [], [np.asarray(w)]
    for _ in range(epochs):
        w, state, loss = step(w, state)
        losses.append(float(loss))
        weights.append(np.asarray(w))
    return losses, weights


if __name__ == "__main__":
    sys.exit(seed.main("jax", train))

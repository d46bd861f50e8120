"""Cross-framework porting: one framework's loss semantics inside another framework's training loop.

Three ports, each trained a few SGD steps from the same initial weights and data as the source
framework's own run with its native loss; the final parameters are compared:

(a) Gluon → torch: ``polyloss.gluon.SoftmaxCrossEntropyLoss()`` on torch tensors, in a torch loop
    (``nn.Linear`` + ``torch.optim.SGD``), against MXNet Gluon with ``gluon.loss.SoftmaxCrossEntropyLoss``
    and ``Trainer('sgd').step(batch_size)``. A Gluon loss returns one value per sample and
    ``Trainer.step(batch_size)`` divides the summed gradient by ``batch_size``; the torch loop
    therefore backpropagates ``loss.sum() / batch_size`` (the batch mean), not ``loss.sum()``.
(b) torch → Keras: ``polyloss.torch.CrossEntropyLoss(ignore_index=, label_smoothing=)`` in
    ``model.compile(loss=...)`` of a Keras model, against ``torch.nn.CrossEntropyLoss`` in torch.
    Keras calls a loss as ``loss(y_true, y_pred)`` and torch's order is ``(input, target)``, so a
    one-line adapter swaps them. It also casts ``y_true`` back to integers: Keras hands the loss
    its targets converted to the loss's float dtype. polyloss.torch accepts whole-number float
    class indices (the run is the same without the cast), but torch reads float targets of the
    logits' shape as probabilities, so the adapter keeps class indices integers explicitly.
(c) torch → JAX: ``polyloss.torch.CrossEntropyLoss(label_smoothing=0.1)`` on jax arrays under
    ``jax.jit(jax.grad(...))`` with ``optax.sgd``, against torch.

Everything runs in float64 (MXNet included: its softmax cross-entropy and SGD support it).
A case whose frameworks are not installed is skipped with a message.
Run: ``python examples/porting.py``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

N, D, C = 8, 5, 4  # batch (a power of two: dividing by it is exact), features, classes
STEPS, LR = 4, 0.5
IGNORE, SMOOTH = 0, 0.1  # torch's ignore_index and label_smoothing in (b)

Params = list[np.ndarray]  # [weight (C, D) as torch and Gluon store it, bias (C,)]


def data(dtype: str = "float64", seed: int = 0) -> tuple[np.ndarray, np.ndarray, Params]:
    """Inputs ``x`` (N, D), class indices ``y`` (N,) (class IGNORE present, not everywhere) and
    the initial ``[weight, bias]``."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, D)).astype(dtype)
    y = rng.integers(0, C, N)
    y[:2] = [IGNORE, 1 + IGNORE]
    w0 = [(0.5 * rng.standard_normal((C, D))).astype(dtype), (0.1 * rng.standard_normal(C)).astype(dtype)]
    return x, y, w0


def max_rel_diff(got: Params, ref: Params) -> float:
    """max |got - ref| / |ref| over all parameters (0 where both are 0)."""
    return max(float(np.max(np.abs(g - r) / np.where(r == 0, 1.0, np.abs(r))))
               for g, r in zip(got, ref, strict=True))


# ---- training loops, one per framework ------------------------------------------------------

def train_torch(loss_fn: Callable[[Any, Any], Any], x: np.ndarray, y: np.ndarray, w0: Params) -> Params:
    """``nn.Linear`` + ``torch.optim.SGD``: ``loss_fn(model(x), y).backward()``, STEPS steps."""
    import torch

    model = torch.nn.Linear(D, C, dtype=getattr(torch, str(x.dtype)))
    with torch.no_grad():
        model.weight.copy_(torch.from_numpy(w0[0]))
        model.bias.copy_(torch.from_numpy(w0[1]))
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(STEPS):
        opt.zero_grad()
        loss_fn(model(xt), yt).backward()
        opt.step()
    return [model.weight.detach().numpy().copy(), model.bias.detach().numpy().copy()]


def train_gluon(x: np.ndarray, y: np.ndarray, w0: Params) -> Params:
    """The native Gluon run: ``SoftmaxCrossEntropyLoss`` + ``Trainer('sgd').step(N)``."""
    import polyloss.backends.mxnet  # noqa: F401  (before mxnet: numpy.bool shim)

    # isort: split
    import mxnet as mx
    from mxnet import autograd, gluon

    dtype = str(x.dtype)
    net = gluon.nn.Dense(C, in_units=D, dtype=dtype)
    net.initialize()
    net.weight.set_data(mx.nd.array(w0[0], dtype=dtype))
    net.bias.set_data(mx.nd.array(w0[1], dtype=dtype))
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": LR})
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    xm, ym = mx.nd.array(x, dtype=dtype), mx.nd.array(y, dtype=dtype)  # Gluon: labels as floats
    for _ in range(STEPS):
        with autograd.record():
            loss = loss_fn(net(xm), ym)  # shape (N,): one loss per sample
        loss.backward()  # the gradient of loss.sum()
        trainer.step(N)  # ... divided by N
    return [net.weight.data().asnumpy(), net.bias.data().asnumpy()]


def train_keras(loss_fn: Callable[[Any, Any], Any], x: np.ndarray, y: np.ndarray, w0: Params) -> Params:
    """A one-Dense Keras model, ``model.compile(loss=loss_fn)`` + ``model.fit``, STEPS full-batch
    SGD steps (Keras's TensorFlow backend; floatx is set to x's dtype while it trains)."""
    import keras

    floatx = keras.config.floatx()
    keras.config.set_floatx(str(x.dtype))
    try:
        dense = keras.layers.Dense(C)
        model = keras.Sequential([keras.Input((D,)), dense])
        dense.set_weights([w0[0].T, w0[1]])  # Keras stores the kernel as (D, C)
        model.compile(optimizer=keras.optimizers.SGD(LR), loss=loss_fn)
        model.fit(x, y, batch_size=N, epochs=STEPS, shuffle=False, verbose=0)
        kernel, bias = dense.get_weights()
    finally:
        keras.config.set_floatx(floatx)
    return [kernel.T, bias]


def train_jax(loss_fn: Callable[[Any, Any], Any], x: np.ndarray, y: np.ndarray, w0: Params) -> Params:
    """``jax.jit`` of a ``jax.grad`` step with ``optax.sgd``, STEPS steps."""
    import jax
    import jax.numpy as jnp
    import optax

    opt = optax.sgd(LR)
    xj, yj = jnp.asarray(x), jnp.asarray(y)

    @jax.jit
    def step(params: dict, state: Any) -> tuple[dict, Any]:
        grads = jax.grad(lambda p: loss_fn(xj @ p["w"].T + p["b"], yj))(params)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    params = {"w": jnp.asarray(w0[0]), "b": jnp.asarray(w0[1])}
    state = opt.init(params)
    for _ in range(STEPS):
        params, state = step(params, state)
    return [np.asarray(params["w"]), np.asarray(params["b"])]


# ---- the three ports ------------------------------------------------------------------------

def gluon_in_torch(dtype: str = "float64") -> tuple[Params, Params]:
    """(a): polyloss.gluon in a torch loop, and the native Gluon run."""
    import polyloss.gluon

    x, y, w0 = data(dtype)
    gluon_ce = polyloss.gluon.SoftmaxCrossEntropyLoss()  # Gluon's semantics: per-sample losses
    # Trainer.step(batch_size) rescales the summed gradient by 1/batch_size: backpropagate the mean
    ported = train_torch(lambda out, target: gluon_ce(out, target).sum() / N, x, y, w0)
    return ported, train_gluon(x, y, w0)


def torch_in_keras(dtype: str = "float64") -> tuple[Params, Params]:
    """(b): polyloss.torch in a Keras model, and the native torch run."""
    import keras
    import torch

    import polyloss.torch

    x, y, w0 = data(dtype)
    torch_ce = polyloss.torch.CrossEntropyLoss(ignore_index=IGNORE, label_smoothing=SMOOTH)

    def adapter(y_true: Any, y_pred: Any) -> Any:  # Keras's order -> torch's; indices as ints
        return torch_ce(y_pred, keras.ops.cast(y_true, "int64"))

    ported = train_keras(adapter, x, y, w0)
    native = train_torch(torch.nn.CrossEntropyLoss(ignore_index=IGNORE, label_smoothing=SMOOTH), x, y, w0)
    return ported, native


def torch_in_jax(dtype: str = "float64") -> tuple[Params, Params]:
    """(c): polyloss.torch under jax.jit/jax.grad with optax.sgd, and the native torch run."""
    import torch

    import polyloss.torch

    x, y, w0 = data(dtype)
    ported = train_jax(polyloss.torch.CrossEntropyLoss(label_smoothing=SMOOTH), x, y, w0)
    native = train_torch(torch.nn.CrossEntropyLoss(label_smoothing=SMOOTH), x, y, w0)
    return ported, native


CASES = {  # title: (port, the frameworks it needs)
    "(a) polyloss.gluon.SoftmaxCrossEntropyLoss in torch vs MXNet Gluon":
        (gluon_in_torch, ("torch", "mxnet")),
    "(b) polyloss.torch.CrossEntropyLoss in Keras vs torch":
        (torch_in_keras, ("torch", "tensorflow", "keras")),
    "(c) polyloss.torch.CrossEntropyLoss in JAX/optax vs torch":
        (torch_in_jax, ("torch", "jax", "optax")),
}


def main() -> int:
    import importlib.util

    try:  # torch before TensorFlow (they share libraries), JAX in float64
        import torch  # noqa: F401
    except ImportError:
        pass
    try:
        import jax

        jax.config.update("jax_enable_x64", True)
    except ImportError:
        pass
    for title, (case, frameworks) in CASES.items():
        missing = [f for f in frameworks if importlib.util.find_spec(f) is None]
        if missing:
            print(f"{title}: skipped ({', '.join(missing)} not installed)")
            continue
        ported, native = case()
        print(f"{title}: {STEPS} SGD steps, float64, max relative difference of the final "
              f"parameters {max_rel_diff(ported, native):.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

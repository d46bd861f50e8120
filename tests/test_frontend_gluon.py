"""``polyloss.gluon`` as a drop-in Gluon loss block, against ``mxnet.gluon.loss`` 1.9.1.

For every class in ``polyloss.gluon.__all__`` (each has a native counterpart of the same
name): a small ``gluon.nn.Dense`` network is trained three SGD steps, the way Gluon scripts
train (``autograd.record()``, ``loss.backward()``, ``Trainer.step(batch_size)``), once with
the native loss and once with the polyloss one, from the same initial weights and data. The
parameters afterwards must agree to a few ulps. Covered: float32 and float64 (where the native
supports float64), ``net.hybridize()`` + ``loss.hybridize()``, a loss hybridized as a child of
a hybridized block (it then sees symbols), ``sample_weight`` and the scalar ``weight``,
``isinstance(..., gluon.loss.Loss)`` and ``repr``; and that calls on non-MXNet arrays keep
polyloss's own path.

MXNet 1.9.1 needs NumPy < 2; in the modern environment this module skips.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from _native import require_module

mx = require_module("mxnet")  # applies polyloss's numpy.bool shim before importing mxnet
from mxnet import autograd, gluon  # noqa: E402

import polyloss.gluon as pg  # noqa: E402

pytestmark = pytest.mark.native

N, IN, STEPS, LR = 6, 5, 3, 0.1
T, C, L = 4, 3, 2  # CTC: frames, classes (the last is the blank), label positions

Extras = Callable[[np.random.Generator, Any], tuple]


def _pm1(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    return np.where(rng.random(shape) < 0.5, -1.0, 1.0)


@dataclass(frozen=True)
class Spec:
    """How to train one loss: the Dense width, the network output's shape, the other
    arguments (NumPy, built from ``rng``), the ``sample_weight`` shape (``None``: the loss
    takes none) and the constructor's keyword arguments."""

    units: int
    extras: Extras
    out_shape: tuple = ()
    weight_shape: tuple | None = (N, 1)
    kwargs: dict = field(default_factory=dict)
    float64: bool = True


def _target(rng: np.random.Generator, dtype: Any) -> tuple:
    return (rng.standard_normal((N, 3)).astype(dtype),)


def _signs(rng: np.random.Generator, dtype: Any) -> tuple:
    return (_pm1(rng, (N, 3)).astype(dtype),)


def _binary(rng: np.random.Generator, dtype: Any) -> tuple:
    return ((rng.random((N, 3)) < 0.5).astype(dtype),)


def _classes(rng: np.random.Generator, dtype: Any) -> tuple:
    return (rng.integers(0, 4, N).astype(dtype),)  # Gluon scripts pass class indices as floats


def _distribution(rng: np.random.Generator, dtype: Any) -> tuple:
    p = rng.random((N, 4)) + 0.1
    return ((p / p.sum(axis=1, keepdims=True)).astype(dtype),)


def _counts(rng: np.random.Generator, dtype: Any) -> tuple:
    return (rng.poisson(2.0, (N, 3)).astype(dtype),)


def _cosine(rng: np.random.Generator, dtype: Any) -> tuple:
    return rng.standard_normal((N, 3)).astype(dtype), _pm1(rng, (N,)).astype(dtype)


def _triplet(rng: np.random.Generator, dtype: Any) -> tuple:
    # far positives, near negatives: the margin is violated, so the loss moves the weights
    return (3 * rng.standard_normal((N, 3))).astype(dtype), (0.1 * rng.standard_normal((N, 3))).astype(dtype)


def _sequences(rng: np.random.Generator, dtype: Any) -> tuple:
    labels = rng.integers(0, C - 1, (N, L)).astype(dtype)
    labels[::2, 1] = -1  # every other row has one label, padded with -1 (MXNet's padding)
    return (labels,)


def _positives(rng: np.random.Generator, dtype: Any) -> tuple:
    return (rng.standard_normal((N, 3)).astype(dtype),)


SPECS: dict[str, Spec] = {
    "L1Loss": Spec(3, _target),
    "L2Loss": Spec(3, _target),
    "HuberLoss": Spec(3, _target, kwargs={"rho": 0.5}),
    "SigmoidBinaryCrossEntropyLoss": Spec(3, _binary),
    "SigmoidBCELoss": Spec(3, _binary),
    "SoftmaxCrossEntropyLoss": Spec(4, _classes),
    "SoftmaxCELoss": Spec(4, _distribution, weight_shape=(N, 1), kwargs={"sparse_label": False}),
    "KLDivLoss": Spec(4, _distribution, kwargs={"from_logits": False}),
    "PoissonNLLLoss": Spec(3, _counts),
    "HingeLoss": Spec(3, _signs),
    "SquaredHingeLoss": Spec(3, _signs),
    "LogisticLoss": Spec(3, _signs),
    # MXNet's CosineEmbeddingLoss compares with a float32 constant: float64 fails in the native
    "CosineEmbeddingLoss": Spec(3, _cosine, float64=False),
    "TripletLoss": Spec(3, _triplet, weight_shape=None),
    # MXNet's CTC operator is float32 only; pred is the Dense output viewed as (N, T, C)
    "CTCLoss": Spec(T * C, _sequences, out_shape=(T, C), weight_shape=(N,), float64=False),
    # MXNet's SDMLLoss builds its smoothed labels in float32: float64 inputs fail in the native
    "SDMLLoss": Spec(3, _positives, weight_shape=None, float64=False),
}

DRIVEN = [name for name in pg.__all__ if name != "Loss"]


def test_every_exported_loss_is_trained_here() -> None:
    assert sorted(SPECS) == sorted(DRIVEN)
    for name in DRIVEN:
        assert hasattr(gluon.loss, name), name


def _cases() -> list:
    out = []
    for name in DRIVEN:
        dtypes = ("float32", "float64") if SPECS[name].float64 else ("float32",)
        for dtype in dtypes:
            for weighted in (False, True):
                out.append(pytest.param(name, dtype, weighted,
                                        id=f"{name}-{dtype}-{'weighted' if weighted else 'plain'}"))
    return out


def _data(name: str, dtype: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple,
                                          np.ndarray]:
    """Initial weight and bias, inputs, the other loss arguments, and a sample weight."""
    spec = SPECS[name]
    rng = np.random.default_rng(sorted(SPECS).index(name))
    w0 = (0.5 * rng.standard_normal((spec.units, IN))).astype(dtype)
    b0 = (0.1 * rng.standard_normal(spec.units)).astype(dtype)
    x = rng.standard_normal((N, IN)).astype(dtype)
    extras = spec.extras(rng, dtype)
    sw = (rng.random(spec.weight_shape or (N,)) + 0.5).astype(dtype)
    return w0, b0, x, None, extras, sw


def _net(w0: np.ndarray, b0: np.ndarray, dtype: str) -> gluon.nn.Dense:
    net = gluon.nn.Dense(w0.shape[0], in_units=w0.shape[1], dtype=dtype)
    net.initialize(ctx=mx.cpu())
    net.weight.set_data(mx.nd.array(w0, dtype=dtype))
    net.bias.set_data(mx.nd.array(b0, dtype=dtype))
    return net


def _train(module: Any, name: str, dtype: str, weighted: bool, hybridize: bool) -> list[np.ndarray]:
    """Three SGD steps with ``module.<name>``; the parameters after each step."""
    spec = SPECS[name]
    w0, b0, x, _, extras, sw = _data(name, dtype)
    kwargs = dict(spec.kwargs)
    if weighted:
        kwargs["weight"] = 0.75
    loss_fn = getattr(module, name)(**kwargs)
    net = _net(w0, b0, dtype)
    if hybridize:
        net.hybridize()
        loss_fn.hybridize()
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": LR})
    xs = mx.nd.array(x, dtype=dtype)
    args = [mx.nd.array(e, dtype=dtype) for e in extras]
    if weighted and spec.weight_shape is not None:
        if name == "CTCLoss":
            args += [None, None]  # pred_lengths, label_lengths come before sample_weight
        args.append(mx.nd.array(sw, dtype=dtype))
    history = []
    for _ in range(STEPS):
        with autograd.record():
            out = net(xs)
            if spec.out_shape:
                out = out.reshape((N, *spec.out_shape))
            loss = loss_fn(out, *args)
        loss.backward()
        trainer.step(N)
        history.append(np.concatenate([net.weight.data().asnumpy().ravel(),
                                       net.bias.data().asnumpy().ravel()]))
    if hybridize and module is pg:  # the cached graph holds polyloss's computation as one node
        assert '"polyloss_call"' in loss_fn._cached_graph[1].tojson()
    return history


# ulps of the parameters' magnitude allowed after three steps. 4 in general: the two runs compute
# the same formulas, but MXNet's fused operators (softmax_cross_entropy, log_softmax) round
# differently from polyloss's composition (1.65 ulps observed, KLDivLoss). SDMLLoss: 16, because
# MXNet's float32 log_softmax is off by up to 4.4e-6 absolute per entry (docs/conventions.md,
# tests/test_mirror_metric.py), which polyloss does not reproduce (7 ulps observed).
ULPS = {"SDMLLoss": 16}


def _assert_same_parameters(got: list[np.ndarray], want: list[np.ndarray], dtype: str,
                            name: str = "") -> None:
    eps = np.finfo(dtype).eps
    for step, (g, w) in enumerate(zip(got, want, strict=True), start=1):
        assert np.isfinite(w).all()
        tol = ULPS.get(name, 4) * eps * max(1.0, float(np.abs(w).max()))
        err = float(np.abs(g - w).max())
        assert err <= tol, f"step {step}: parameters differ by {err:.3g} (> {tol:.3g})"
    assert not np.array_equal(want[0], want[-1])  # the loss did move the parameters


@pytest.mark.parametrize(("name", "dtype", "weighted"), _cases())
def test_training_matches_native(name: str, dtype: str, weighted: bool) -> None:
    want = _train(gluon.loss, name, dtype, weighted, hybridize=False)
    _assert_same_parameters(_train(pg, name, dtype, weighted, hybridize=False), want, dtype, name)


# MXNet's own SDMLLoss reads ``x1.shape`` in hybrid_forward, so it cannot hybridize (symbols have
# no shape); the hybridized polyloss SDMLLoss is compared with the native's imperative run.
NATIVE_NOT_HYBRIDIZABLE = {"SDMLLoss"}


@pytest.mark.parametrize(("name", "dtype", "weighted"), _cases())
def test_hybridized_training_matches_native(name: str, dtype: str, weighted: bool) -> None:
    want = _train(gluon.loss, name, dtype, weighted, hybridize=name not in NATIVE_NOT_HYBRIDIZABLE)
    _assert_same_parameters(_train(pg, name, dtype, weighted, hybridize=True), want, dtype, name)


class _Model(gluon.HybridBlock):
    """A Dense layer and a loss as children of one block: hybridized, the loss sees symbols."""

    def __init__(self, loss_fn: gluon.loss.Loss, w0: np.ndarray, b0: np.ndarray, dtype: str) -> None:
        super().__init__()
        with self.name_scope():
            self.dense = _net(w0, b0, dtype)
            self.loss_fn = loss_fn

    def hybrid_forward(self, F: Any, x: Any, *args: Any) -> Any:  # noqa: N803 - Gluon's name
        return self.loss_fn(self.dense(x), *args)


@pytest.mark.parametrize("name", ["L2Loss", "SoftmaxCrossEntropyLoss", "SigmoidBCELoss"])
def test_loss_inside_a_hybridized_parent_matches_native(name: str) -> None:
    w0, b0, x, _, extras, _sw = _data(name, "float32")
    runs = []
    for module in (gluon.loss, pg):
        model = _Model(getattr(module, name)(), w0, b0, "float32")
        model.hybridize()
        trainer = gluon.Trainer(model.collect_params(), "sgd", {"learning_rate": LR})
        history = []
        for _ in range(STEPS):
            with autograd.record():
                loss = model(mx.nd.array(x), *(mx.nd.array(e) for e in extras))
            loss.backward()
            trainer.step(N)
            history.append(model.dense.weight.data().asnumpy().ravel())
        runs.append(history)
    _assert_same_parameters(runs[1], runs[0], "float32", name)


def test_pos_weight_trains_like_native() -> None:
    w0, b0, x, _, (label,), sw = _data("SigmoidBCELoss", "float32")
    pos_weight = np.array([[0.5, 2.0, 3.0]], np.float32)
    runs = []
    for module in (gluon.loss, pg):
        for hybridize in (False, True):
            net, loss_fn = _net(w0, b0, "float32"), module.SigmoidBCELoss()
            if hybridize:
                net.hybridize()
                loss_fn.hybridize()
            trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": LR})
            history = []
            for _ in range(STEPS):
                with autograd.record():
                    loss = loss_fn(net(mx.nd.array(x)), mx.nd.array(label), mx.nd.array(sw),
                                   mx.nd.array(pos_weight))
                loss.backward()
                trainer.step(N)
                history.append(net.weight.data().asnumpy().ravel())
            runs.append(history)
    _assert_same_parameters(runs[2], runs[0], "float32")
    _assert_same_parameters(runs[3], runs[1], "float32")


@pytest.mark.parametrize("name", DRIVEN)
def test_is_a_gluon_loss_block_with_the_native_repr(name: str) -> None:
    kwargs = SPECS[name].kwargs
    ours, native = getattr(pg, name)(**kwargs), getattr(gluon.loss, name)(**kwargs)
    assert isinstance(ours, gluon.loss.Loss) and isinstance(ours, gluon.HybridBlock)
    assert isinstance(ours, getattr(pg, name)) and type(ours).__name__ == getattr(pg, name).__name__
    assert repr(ours) == repr(native)
    weighted = getattr(pg, name)(weight=2.0, **kwargs)
    assert repr(weighted) == repr(getattr(gluon.loss, name)(weight=2.0, **kwargs))


def test_hybridized_block_follows_new_batch_sizes_and_none_patterns() -> None:
    loss_fn = pg.L2Loss()
    loss_fn.hybridize()
    rng = np.random.default_rng(7)
    for n in (4, 2):
        p, t, w = (rng.standard_normal((n, 3)).astype(np.float32) for _ in range(3))
        want = gluon.loss.L2Loss()(mx.nd.array(p), mx.nd.array(t), mx.nd.array(w)).asnumpy()
        np.testing.assert_array_equal(loss_fn(mx.nd.array(p), mx.nd.array(t), mx.nd.array(w)).asnumpy(),
                                      want)
        want = gluon.loss.L2Loss()(mx.nd.array(p), mx.nd.array(t)).asnumpy()
        np.testing.assert_array_equal(loss_fn(mx.nd.array(p), mx.nd.array(t)).asnumpy(), want)
    # a held Python argument (PoissonNLLLoss's epsilon) that changes rebuilds the graph
    poisson = pg.PoissonNLLLoss(from_logits=False)
    poisson.hybridize()
    rate, count = mx.nd.array(np.zeros((2, 2), np.float32)), mx.nd.array(np.ones((2, 2), np.float32))
    for eps in (1e-8, 0.5):
        want = gluon.loss.PoissonNLLLoss(from_logits=False)(rate, count, None, eps).asnumpy()
        np.testing.assert_array_equal(poisson(rate, count, None, eps).asnumpy(), want)


def test_non_mxnet_arrays_keep_polyloss_path() -> None:
    loss_fn = pg.L2Loss()
    loss_fn.hybridize()
    p, t = np.array([[1.0, 2.0]]), np.array([[0.0, 0.0]])
    out = loss_fn(p, t)
    assert type(out) is np.ndarray and out.dtype == np.float64
    np.testing.assert_array_equal(out, [1.25])  # (1² + 2²) / 2 / 2 by hand
    with pytest.raises(TypeError, match="two frameworks"):
        loss_fn(mx.nd.array(p), t)

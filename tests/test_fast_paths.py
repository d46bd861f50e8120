"""Each fused kernel against the generic code it stands in for, on the same backend.

A namespace's fused kernels (``polyloss/backends/kernels.py``: torch's ``F.log_softmax``,
``F.cross_entropy``, ``F.huber_loss``, ...; JAX's ``jax.nn``; TensorFlow's ``tf.nn``; MXNet's
``npx``) are used only where they compute what the generic Array API code computes. Every
kernel a backend has is run here against ``kernels.generic(xp)`` -- the same namespace without
its kernels -- on the same inputs: random ones and edge ones (zero residuals and residuals at
the Huber/smooth-L1 threshold, |logits| = 1e4, -inf logits, tiny and huge values), float32
and float64, values and gradients. Then whole losses, canonical and mirrors, with and without
kernels, and the compiled modes (``torch.compile(fullgraph=True)``, ``jax.jit``,
``tf.function(jit_compile=True)``). Expected values are the generic code's, run by the same
framework.
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pytest
from _native import assert_close, rtol_for
from conftest import INSTALLED, require

import polyloss
from polyloss import backends
from polyloss import keras as pk
from polyloss import optax as po
from polyloss import torch as pt
from polyloss.backends import backend_of, kernels
from polyloss.core import classification as cls_core
from polyloss.core import regression as reg_core
from polyloss.core.fused import fused_reduction

# which kernels each framework's namespace carries (what the tests below exercise)
EXPECTED = {
    "numpy": {"log_sigmoid", "squared_error", "absolute_error", "huber", "smooth_l1"},
    "torch": {"log_softmax", "softmax_cross_entropy", "log_sigmoid", "squared_error",
              "absolute_error", "huber", "smooth_l1", "binary_cross_entropy_with_logits"},
    "jax": {"log_softmax", "softmax_cross_entropy"},
    "tensorflow": {"log_softmax", "softmax_cross_entropy"},
    "mxnet": {"log_softmax", "softmax_cross_entropy", "absolute_error", "smooth_l1", "huber"},
}
KERNEL_BACKENDS = [b.name for b in INSTALLED if EXPECTED.get(b.name)]
AUTOGRAD_KERNEL_BACKENDS = [b.name for b in INSTALLED if EXPECTED.get(b.name) and b.differentiable]
DTYPES = ("float32", "float64")


def _namespaces(b):
    fast = backend_of(b.asarray(np.ones(2))).xp
    return fast, kernels.generic(fast)


def _params(names):
    return [pytest.param(b, k, id=f"{b}-{k}") for b in KERNEL_BACKENDS for k in sorted(EXPECTED[b])
            if k in names]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_backend_has_the_expected_kernels(name):
    b = require(name)
    fast, generic = _namespaces(b)
    ks = fast.polyloss_kernels
    provided = set() if ks is None else {f.name for f in dataclasses.fields(ks) if getattr(ks, f.name)}
    assert provided == EXPECTED[name]
    assert generic.polyloss_kernels is None
    for kernel_name in EXPECTED[name]:
        assert cls_core.kernel(fast, kernel_name) is not None
        assert cls_core.kernel(generic, kernel_name) is None


def _atol(dtype, n):
    # results that cancel n terms of order 1 (a log-softmax gradient 1 - C·softmax at a
    # uniform row, a log-probability near 0) are equal to a few ulps of those terms
    return rtol_for(dtype, n) * n


def _value_and_grad(b, fn, arrays, argnum):
    if b.differentiable:
        return b.value_and_grad(fn, arrays, argnum)
    out = b.to_numpy(fn(*[b.asarray(a) for a in arrays]))
    return out, out  # NumPy: no gradient, the value is compared twice


def _warned(fn, *args):
    """``fn(*args)`` and the warnings it gave (a kernel must not warn where the generic code
    does not, e.g. overflow in a branch whose value is discarded)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn(*args)
    return out, {(w.category, str(w.message)) for w in caught}


def _same(b, fn_fast, fn_generic, arrays, dtype, *, n=1, argnums=(0,)):
    """Value and gradient (of the sum) of the two, equal to rounding."""
    for argnum in argnums:
        (v_fast, g_fast), warned_fast = _warned(_value_and_grad, b, fn_fast, arrays, argnum)
        (v_gen, g_gen), warned_gen = _warned(_value_and_grad, b, fn_generic, arrays, argnum)
        assert warned_fast <= warned_gen
        assert_close(v_fast, v_gen, dtype=dtype, n=n, atol=_atol(dtype, n), err_msg="value")
        assert_close(g_fast, g_gen, dtype=dtype, n=n, atol=_atol(dtype, n),
                     err_msg=f"gradient w.r.t. argument {argnum}")


def _logits(dtype, rng):
    x = rng.standard_normal((6, 7)) * 3
    x[1] = [1e4, -1e4, 0.0, 5.0, -5.0, 1e4, 3.0]  # exp underflows for all but the maxima
    x[2] = -np.inf
    x[2, 3] = 0.5  # one finite class, the rest masked out
    x[3] = 2.0  # a constant row
    x[4, 0] = -np.inf
    x[5] = 1e-30
    return x.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("backend_name", "kernel"), _params({"log_softmax"}))
def test_log_softmax_kernel(backend_name, kernel, dtype, rng):
    b = require(backend_name)
    fast, generic = _namespaces(b)
    x = _logits(dtype, rng)
    for axis in (-1, 0):
        _same(b, lambda v, a=axis: cls_core.log_softmax(v, a, fast),
              lambda v, a=axis: cls_core.log_softmax(v, a, generic), [x], dtype, n=x.shape[axis])
    x3 = rng.standard_normal((2, 5, 3)).astype(dtype)
    _same(b, lambda v: cls_core.log_softmax(v, 1, fast),
          lambda v: cls_core.log_softmax(v, 1, generic), [x3], dtype, n=5)
    # several axes (optax's axis=None and tuples) are the generic code's: no kernel takes them
    for axes in (None, (0, 2)):
        _same(b, lambda v, a=axes: cls_core.log_softmax(v, a, fast),
              lambda v, a=axes: cls_core.log_softmax(v, a, generic), [x3], dtype, n=x3.size)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("backend_name", "kernel"), _params({"softmax_cross_entropy"}))
def test_softmax_cross_entropy_kernel(backend_name, kernel, dtype, rng):
    b = require(backend_name)
    fast, generic = _namespaces(b)
    x = _logits(dtype, rng)
    labels = np.array([0, 1, 3, 4, 2, 6], dtype=np.int64)  # row 4's label is not its -inf class
    _same(b, lambda v, t: cls_core.softmax_cross_entropy(v, t, -1, fast),
          lambda v, t: cls_core.softmax_cross_entropy(v, t, -1, generic), [x, labels], dtype, n=7)
    # the class axis elsewhere (torch moves it to dim 1, TensorFlow to the end)
    x3 = rng.standard_normal((4, 5, 3)).astype(dtype)
    for axis, shape in ((1, (4, 3)), (0, (5, 3)), (2, (4, 5))):
        t = rng.integers(0, x3.shape[axis], shape).astype(np.int64)
        _same(b, lambda v, t, a=axis: cls_core.softmax_cross_entropy(v, t, a, fast),
              lambda v, t, a=axis: cls_core.softmax_cross_entropy(v, t, a, generic), [x3, t], dtype,
              n=x3.shape[axis])
    # an unbatched input: one row, a 0-d label
    _same(b, lambda v, t: cls_core.softmax_cross_entropy(v, t, 0, fast),
          lambda v, t: cls_core.softmax_cross_entropy(v, t, 0, generic),
          [x[0], np.asarray(2, dtype=np.int64)], dtype, n=7)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("backend_name", "kernel"), _params({"log_sigmoid"}))
def test_log_sigmoid_kernel_in_bce(backend_name, kernel, dtype, rng):
    b = require(backend_name)
    fast, generic = _namespaces(b)
    z = np.concatenate([rng.standard_normal(6) * 4,
                        [0.0, 1e4, -1e4, 20.0, -20.0, 100.0, -100.0, 1e-30]]).astype(dtype)
    y = np.concatenate([rng.uniform(0, 1, 6), [0.0, 1.0, 0.3, 1.0, 0.0, 0.5, 0.9, 1.0]]).astype(dtype)
    pw = np.full_like(z, 2.5)
    _same(b, lambda v: cls_core.log_sigmoid(v, fast), lambda v: cls_core.log_sigmoid(v, generic),
          [z], dtype)
    for weighted in (False, True):
        def make(xp, weighted=weighted):
            return lambda v, t, w: cls_core.sigmoid_bce_with_logits(v, t, xp, w if weighted else None)
        _same(b, make(fast), make(generic), [z, y, pw], dtype, argnums=(0, 1))


REGRESSION = {
    "squared_error": (reg_core.squared_error, [{}]),
    "absolute_error": (reg_core.absolute_error, [{}]),
    # MXNet's kernels take only powers of 4 (0.25, 4): exact there, the generic code elsewhere
    "huber": (reg_core.huber, [{"delta": 1.0}, {"delta": 0.5}, {"delta": 2.0}, {"delta": 0.25}]),
    "smooth_l1": (reg_core.smooth_l1, [{"beta": 1.0}, {"beta": 0.5}, {"beta": 0.0}, {"beta": 4.0}]),
}


def _residual_inputs(dtype, rng, threshold):
    """Random residuals, and zero, ±threshold, tiny and huge ones (``pred - target`` exact)."""
    target = np.concatenate([rng.standard_normal(8), np.zeros(9)])
    big = 1e30 if dtype == "float32" else 1e200
    edge = [0.0, threshold, -threshold, 1e-30, -1e-30, big, -big, 0.5 * threshold, 3.0]
    pred = np.concatenate([target[:8] + rng.standard_normal(8) * 2, edge])
    return pred.astype(dtype).reshape(1, 17), target.astype(dtype).reshape(1, 17)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("backend_name", "kernel"), _params(set(REGRESSION)))
def test_regression_kernel(backend_name, kernel, dtype, rng):
    b = require(backend_name)
    fast, generic = _namespaces(b)
    core_fn, param_sets = REGRESSION[kernel]
    for params in param_sets:
        threshold = params.get("delta", params.get("beta", 1.0)) or 1.0
        pred, target = _residual_inputs(dtype, rng, threshold)
        # unreduced
        _same(b, lambda p, t, k=params: core_fn(p, t, xp=fast, **k),
              lambda p, t, k=params: core_fn(p, t, xp=generic, **k), [pred, target], dtype,
              argnums=(0, 1))
        # the fused sum and mean against the generic loss reduced by the namespace
        for reduction in ("sum", "mean"):
            def fused(p, t, reduction=reduction, k=params):
                out = fused_reduction(core_fn, p, t, reduction, xp=fast, **k)
                if out is None:  # smooth L1 with beta = 0 (L1), or a parameter declined
                    assert k.get("beta") == 0.0 or backend_name == "mxnet"
                    out = getattr(fast, reduction)(core_fn(p, t, xp=fast, **k))
                return out

            def reference(p, t, reduction=reduction, k=params):
                return getattr(generic, reduction)(core_fn(p, t, xp=generic, **k))

            _same(b, fused, reference, [pred, target], dtype, n=pred.size, argnums=(0, 1))
        # nothing to fuse on an empty array
        empty = np.zeros((0, 3), dtype=dtype)
        assert fused_reduction(core_fn, b.asarray(empty), b.asarray(empty), "mean",
                                        xp=fast, **params) is None


@pytest.mark.parametrize("backend_name", KERNEL_BACKENDS)
def test_kernels_on_0d_arrays(backend_name):
    b = require(backend_name)
    fast, generic = _namespaces(b)
    pred, target = np.asarray(0.25), np.asarray(-1.5)
    for name in sorted(EXPECTED[backend_name] & set(REGRESSION)):
        core_fn, param_sets = REGRESSION[name]
        for params in param_sets:
            _same(b, lambda p, t, f=core_fn, k=params: f(p, t, xp=fast, **k),
                  lambda p, t, f=core_fn, k=params: f(p, t, xp=generic, **k), [pred, target],
                  "float64")
    if "log_sigmoid" in EXPECTED[backend_name]:
        _same(b, lambda z, y: cls_core.sigmoid_bce_with_logits(z, y, fast),
              lambda z, y: cls_core.sigmoid_bce_with_logits(z, y, generic),
              [np.asarray(-3.0), np.asarray(0.25)], "float64")


# ---- whole losses, with and without kernels -------------------------------------------------

@pytest.fixture
def generic_backends(monkeypatch):
    """Resolve every array to its backend without kernels while the test runs."""
    resolve = backends._resolve_type

    def generic_resolve(x):
        b = resolve(x)
        return dataclasses.replace(b, xp=kernels.generic(b.xp))

    def run(fn, *args):
        with monkeypatch.context() as m:
            m.setattr(backends, "_CACHE", {})
            m.setattr(backends, "_resolve_type", generic_resolve)
            return fn(*args)

    return run


def _class_inputs(dtype, rng, shape=(6, 5)):
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    x[0, 0] = 1e4
    x[1, 1] = -1e4
    labels = rng.integers(0, shape[1], shape[:1] + shape[2:]).astype(np.int64)
    labels[0] = 1
    return x, labels


WEIGHTS = np.array([0.5, 1.0, 2.0, 0.25, 1.5])

CANONICAL = {
    "ce": lambda x, t: polyloss.cross_entropy(x, t),
    "ce-smoothing": lambda x, t: polyloss.cross_entropy(x, t, label_smoothing=0.1),
    "ce-weights-ignore": lambda x, t: polyloss.cross_entropy(
        x, t, class_weight=_like(x, WEIGHTS), ignore_index=1, normalizer="sum_of_weights",
        if_all_ignored="nan"),
    "ce-weights-smoothing-none": lambda x, t: polyloss.cross_entropy(
        x, t, class_weight=_like(x, WEIGHTS), label_smoothing=0.2, reduction="none"),
    "nll": lambda x, t: polyloss.nll(x - 20001.0, t, reduction="sum"),  # log-probabilities <= 0
    "focal": lambda x, t: polyloss.focal(x, t, kind="categorical", gamma=2.0),
}


def _like(x, a):
    """``a`` (NumPy) as an array of ``x``'s framework and dtype."""
    b = backend_of(x)
    xp = b.xp
    x = b.to_xp(x) if b.to_xp is not None else x
    out = xp.asarray(np.asarray(a, dtype=np.float64))
    out = xp.astype(out, x.dtype)
    return b.from_xp(out) if b.from_xp is not None else out


def _compare_losses(b, loss, arrays, dtype, generic_backends, argnums=(0,)):
    for argnum in argnums:
        (v_fast, g_fast), warned_fast = _warned(_value_and_grad, b, loss, arrays, argnum)
        (v_gen, g_gen), warned_gen = _warned(generic_backends, _value_and_grad, b, loss, arrays,
                                             argnum)
        assert warned_fast <= warned_gen
        n = int(np.prod(np.shape(arrays[0])))
        assert_close(v_fast, v_gen, dtype=dtype, n=n, atol=_atol(dtype, n), err_msg="value")
        assert_close(g_fast, g_gen, dtype=dtype, n=n, atol=_atol(dtype, n), err_msg="gradient")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sorted(CANONICAL))
@pytest.mark.parametrize("backend_name", AUTOGRAD_KERNEL_BACKENDS)
def test_canonical_classification_with_and_without_kernels(backend_name, case, dtype, rng,
                                                           generic_backends):
    b = require(backend_name)
    x, t = _class_inputs(dtype, rng)
    _compare_losses(b, CANONICAL[case], [x, t], dtype, generic_backends)
    if case == "ce":  # spatial positions, classes on axis 1
        x4, t4 = _class_inputs(dtype, rng, (2, 5, 3, 2))
        _compare_losses(b, lambda x, t: polyloss.cross_entropy(x, t, axis=1), [x4, t4], dtype,
                        generic_backends)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend_name", KERNEL_BACKENDS)
def test_canonical_elementwise_with_and_without_kernels(backend_name, dtype, rng,
                                                        generic_backends):
    b = require(backend_name)
    pred, target = _residual_inputs(dtype, rng, 0.5)
    y = rng.uniform(0, 1, pred.shape).astype(dtype)
    for reduction in ("none", "sum", "mean"):
        for loss in (polyloss.mse, polyloss.mae, lambda p, t, **k: polyloss.huber(p, t, delta=0.5, **k),
                     lambda p, t, **k: polyloss.smooth_l1(p, t, beta=0.5, **k)):
            _compare_losses(b, lambda p, t, loss=loss, r=reduction: loss(p, t, reduction=r),
                            [pred, target], dtype, generic_backends, argnums=(0, 1))
        _compare_losses(
            b, lambda z, y, r=reduction: polyloss.binary_cross_entropy(z, y, from_logits=True,
                                                                        reduction=r),
            [pred, y], dtype, generic_backends, argnums=(0, 1))


def _mirror_cases(name):
    """The mirrors' softmax cross-entropy and elementwise losses on their own framework."""
    if name == "torch":
        import polyloss.torch as pt

        w = WEIGHTS
        labels = np.array([0, 1, -100, 3, 4, 1], dtype=np.int64)
        return [
            (lambda x, t: pt.cross_entropy(x, t), None),
            (lambda x, t: pt.cross_entropy(x, t, weight=_like(x, w), label_smoothing=0.1), labels),
            (lambda x, t: pt.cross_entropy(x, t, ignore_index=1, reduction="sum"), None),
            (lambda x, t: pt.nll_loss(x - 20001.0, t, weight=_like(x, w)), labels),
            (lambda x, t: pt.huber_loss(x, x * 0.5 + 0.25, delta=0.5), None),
            (lambda x, t: pt.smooth_l1_loss(x, x * 0.5, beta=0.5, reduction="sum"), None),
            (lambda x, t: pt.mse_loss(x, x * 0.5), None),
            (lambda x, t: pt.l1_loss(x, x * 0.5, reduction="none"), None),
        ]
    if name == "tensorflow":
        import polyloss.keras as pk

        return [
            (lambda x, t: pk.SparseCategoricalCrossentropy(from_logits=True)(t, x), None),
            (lambda x, t: pk.SparseCategoricalCrossentropy(from_logits=True, ignore_class=1)(t, x), None),
            (lambda x, t: pk.sparse_categorical_crossentropy(t, x, from_logits=True), None),
        ]
    if name == "mxnet":
        import polyloss.gluon as pg

        return [
            (lambda x, t: pg.SoftmaxCrossEntropyLoss()(x, t), None),
            (lambda x, t: pg.SoftmaxCrossEntropyLoss(axis=0)(x, t[:5]), None),
        ]
    import polyloss.optax as po

    def one_hot(x, t):
        xp = backend_of(x).xp
        return xp.astype(xp.expand_dims(t, axis=-1) == xp.arange(x.shape[-1]), x.dtype)

    return [
        (lambda x, t: po.softmax_cross_entropy(x, one_hot(x, t)), None),
        (lambda x, t: po.safe_softmax_cross_entropy(x, one_hot(x, t)), None),
    ]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend_name", AUTOGRAD_KERNEL_BACKENDS)
def test_mirrors_with_and_without_kernels(backend_name, dtype, rng, generic_backends):
    b = require(backend_name)
    x, t = _class_inputs(dtype, rng)
    # Keras loss objects compute in their dtype policy's float32 whatever the input
    tolerance = "float32" if backend_name == "tensorflow" else dtype
    for loss, labels in _mirror_cases(backend_name):
        _compare_losses(b, loss, [x, t if labels is None else labels], tolerance, generic_backends)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("backend_name", "kernel"), _params({"binary_cross_entropy_with_logits"}))
def test_torch_mirror_bce_with_logits_kernel(backend_name, kernel, dtype, rng, generic_backends):
    import polyloss.torch as pt

    b = require(backend_name)
    z = np.concatenate([rng.standard_normal(10) * 4, [0.0, 1e4, -1e4, 20.0, -20.0, 1e-30]])
    y = np.concatenate([rng.uniform(0, 1, 10), [0.5, 1.0, 0.3, 0.0, 1.0, 1.0]])
    z, y = z.astype(dtype).reshape(4, 4), y.astype(dtype).reshape(4, 4)
    w, pw = rng.uniform(0.5, 2, (4, 4)), rng.uniform(0.5, 3, 4)
    for reduction in ("none", "sum", "mean"):
        for weighted in (False, True):
            def loss(z, y, r=reduction, weighted=weighted):
                if not weighted:
                    return pt.binary_cross_entropy_with_logits(z, y, reduction=r)
                return pt.binary_cross_entropy_with_logits(z, y, weight=_like(z, w), reduction=r,
                                                           pos_weight=_like(z, pw))
            _compare_losses(b, loss, [z, y], dtype, generic_backends, argnums=(0, 1))


# ---- compiled modes --------------------------------------------------------------------------

def _compiled_value_and_grad(name, fn, arrays):
    """``fn``'s value and the gradient of its sum w.r.t. the first array, compiled."""
    if name == "torch":
        import torch

        compiled = torch.compile(fn, fullgraph=True, backend="eager")
        ts = [torch.from_numpy(a) for a in arrays]
        ts[0].requires_grad_(True)
        out = compiled(*ts)
        (g,) = torch.autograd.grad(out.sum(), ts[0])
        return out.detach().numpy(), g.numpy()
    if name == "jax":
        import jax
        import jax.numpy as jnp

        def total(x, *rest):
            out = fn(x, *rest)
            return jnp.sum(out), out

        (_, out), g = jax.jit(jax.value_and_grad(total, has_aux=True))(*map(jnp.asarray, arrays))
        return np.asarray(out), np.asarray(g)
    import tensorflow as tf

    @tf.function(jit_compile=True)
    def step(x, *rest):
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = fn(x, *rest)
            total = tf.reduce_sum(out)
        return out, tape.gradient(total, x)

    out, g = step(*map(tf.constant, arrays))
    return out.numpy(), g.numpy()


COMPILED_LOSSES = {
    "ce": lambda x, t, w: polyloss.cross_entropy(x, t),
    "ce-smoothing-weights": lambda x, t, w: polyloss.cross_entropy(
        x, t, label_smoothing=0.1, class_weight=w, ignore_index=1),
    "huber": lambda x, t, w: polyloss.huber(x, x * 0.5, delta=0.5),
    "bce-logits": lambda x, t, w: polyloss.binary_cross_entropy(x, x * 0.0 + 0.5, from_logits=True),
}


@pytest.mark.parametrize("case", sorted(COMPILED_LOSSES))
@pytest.mark.parametrize("backend_name", [n for n in ("torch", "jax", "tensorflow")
                                          if n in AUTOGRAD_KERNEL_BACKENDS])
def test_compiled_fast_paths(backend_name, case, rng):
    b = require(backend_name)
    dtype = "float32"
    x, t = _class_inputs(dtype, rng)
    w = WEIGHTS.astype(dtype)
    fn = COMPILED_LOSSES[case]
    value, grad = _compiled_value_and_grad(backend_name, fn, [x, t, w])
    want_value, want_grad = b.value_and_grad(fn, [x, t, w])
    atol = _atol(dtype, x.size)
    assert_close(value, want_value, dtype=dtype, n=x.size, atol=atol, err_msg="compiled value")
    assert_close(grad, want_grad, dtype=dtype, n=x.size, atol=atol, err_msg="compiled gradient")
    if case == "ce":  # an out-of-range label cannot be refused under a trace: NaN
        bad = t.copy()
        bad[2] = 7
        assert math.isnan(float(np.sum(_compiled_value_and_grad(backend_name, fn, [x, bad, w])[0])))


def test_first_call_of_a_process_inside_torch_compile(monkeypatch, rng):
    """Resolution (a namespace module's import, a new Backend) may happen inside the trace."""
    require("torch")
    import torch

    monkeypatch.setattr(backends, "_CACHE", {})  # as in a fresh process
    x, t = _class_inputs("float32", rng)
    xt, tt = torch.from_numpy(x), torch.from_numpy(t)
    for fn in (lambda a, b: polyloss.huber(a, a * 0.5), lambda a, b: polyloss.cross_entropy(a, b)):
        got = torch.compile(fn, fullgraph=True, backend="eager")(xt, tt)
        assert_close(got, fn(xt, tt), dtype="float32", n=x.size)


# ---- dispatch --------------------------------------------------------------------------------

def test_scalar_subclasses_are_skipped_by_resolution():
    b = require("numpy")
    x = b.asarray(np.ones(3))
    # np.float64 is a Python float: skipped, as Python scalars are, and never cached
    assert backend_of(np.float64(2.0), x).framework == "numpy"
    assert np.float64 not in backends._CACHE
    with pytest.raises(TypeError, match="at least one array"):
        backend_of(np.float64(1.0), None, 3)


# ---- CTC: the hand-written forward-backward against the recorded recursion --------------------
# ``polyloss.canonical.sequence.fast_paths``: where a namespace carries kernels, CTC's log
# likelihood runs as one operation with its hand-written gradient (the beta recursion); the
# generic namespace records the alpha recursion frame by frame. Same lattice, same floors.

def _ctc_inputs(dtype, rng):
    """Logits ``(4, 7, 5)``, labels (blank 0), lengths, and optax's paddings (1.0: padded)."""
    n, t_max, c = 4, 7, 5
    x = (rng.standard_normal((n, t_max, c)) * 2).astype(dtype)
    labels = np.array([[1, 2, 2], [3, 3, 3], [4, 0, 0], [1, 1, 2]], dtype=np.int64)
    # row 1 needs all its 5 frames; row 3 needs 4 (a blank between the 1s): infeasible in 3
    input_lengths = np.array([7, 5, 4, 3], dtype=np.int64)
    label_lengths = np.array([3, 3, 1, 3], dtype=np.int64)
    logit_pad = (np.arange(t_max)[None, :] >= input_lengths[:, None]).astype(dtype)
    label_pad = (np.arange(3)[None, :] >= label_lengths[:, None]).astype(dtype)
    return [x, labels, input_lengths, label_lengths, logit_pad, label_pad]


CTC_LOSSES = {
    "canonical": lambda x, y, il, ll, xpad, ypad: polyloss.ctc(x, y, il, ll, reduction="none"),
    "zero-infinity-normalized": lambda x, y, il, ll, xpad, ypad: polyloss.ctc(
        x, y, il, ll, zero_infinity=True, normalize_by_length=True, reduction="sum"),
    "empty-label": lambda x, y, il, ll, xpad, ypad: polyloss.ctc(x, y, il, ll * 0, reduction="none"),
    "torch-mirror": lambda x, y, il, ll, xpad, ypad: pt.ctc_loss(
        x, y, il, ll, blank=0, reduction="sum", zero_infinity=True),
    "keras-mirror": lambda x, y, il, ll, xpad, ypad: pk.ctc(y, x),
    "optax-mirror": lambda x, y, il, ll, xpad, ypad: po.ctc_loss(x, xpad, y, ypad, blank_id=0),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sorted(CTC_LOSSES))
@pytest.mark.parametrize("backend_name", AUTOGRAD_KERNEL_BACKENDS)
def test_ctc_forward_backward_with_and_without_kernels(backend_name, case, dtype, rng,
                                                       generic_backends):
    b = require(backend_name)
    arrays = _ctc_inputs(dtype, rng)
    if case == "torch-mirror":  # (T, N, C) log-probabilities
        x = arrays[0].astype(np.float64)
        x = x - np.log(np.exp(x).sum(-1, keepdims=True))
        arrays[0] = np.transpose(x, (1, 0, 2)).astype(dtype)
    if case in ("keras-mirror", "optax-mirror"):
        # no infeasible row (their floors give it a large finite value); Keras: every frame
        arrays = [a[:3] for a in arrays]
    # Keras's CTC computes in float32 for float64 inputs (both paths): float32's tolerance
    _compare_losses(b, CTC_LOSSES[case], arrays, "float32" if case == "keras-mirror" else dtype,
                    generic_backends)


def test_ctc_fast_path_is_used_where_kernels_are():
    from polyloss.canonical.sequence import fast_paths

    b = require("numpy")
    fast, generic = _namespaces(b)
    assert fast_paths(fast) and not fast_paths(generic)


@pytest.mark.parametrize("backend_name", [n for n in ("torch", "jax", "tensorflow")
                                          if n in AUTOGRAD_KERNEL_BACKENDS])
def test_compiled_ctc_fast_path(backend_name, rng):
    b = require(backend_name)
    arrays = [a[:3] for a in _ctc_inputs("float32", rng)]
    x = arrays[0]
    fn = CTC_LOSSES["canonical"]
    value, grad = _compiled_value_and_grad(backend_name, fn, arrays)
    want_value, want_grad = b.value_and_grad(fn, arrays)
    atol = _atol("float32", x.size)
    assert_close(value, want_value, dtype="float32", n=x.size, atol=atol, err_msg="compiled value")
    assert_close(grad, want_grad, dtype="float32", n=x.size, atol=atol, err_msg="compiled gradient")

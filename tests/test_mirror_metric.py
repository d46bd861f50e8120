"""The metric-learning mirrors: ``polyloss.keras``'s ``Circle``/``circle`` and
``CategoricalGeneralizedCrossEntropy``/``categorical_generalized_cross_entropy`` against Keras
3.15 on TensorFlow, and ``polyloss.gluon.SDMLLoss`` against MXNet 1.9.1 (``mx.nd`` arrays with
``autograd``).

1. Natives (full environment). Values and gradients (``tf.GradientTape`` / ``autograd``, of the
   sum of the result) of the mirror on the native's own array type against the native, on random
   and edge inputs: Circle with all samples in one class (no negatives), all labels distinct (no
   positives), exact unit vectors (cosine distances exactly 0, the ``max(d, 0)`` tie), a batch of
   one, reference labels/embeddings, ``remove_diagonal=False``, other ``gamma``/``margin``, every
   reduction with and without ``sample_weight``, ``dtype=None`` (float32) and ``'float64'``; GCE
   with confident (one-hot, right and wrong: Keras's ``-inf``/NaN gradient at ``p_y = 0``) and
   uniform predictions, 3-D inputs, other ``q``, every reduction; SDML with ``x2 = x1``, a batch of
   one (NaN in Gluon), other smoothing, the ignored ``weight``/``batch_axis``.
2. Every array type (both environments). A NumPy float64 transcription of each native formula
   (``*_oracle`` below, checked against hand-worked numbers and, in the full environment, against
   the natives in part 1) is the reference on every installed array type, and each autograd
   backend's gradient is checked against central differences of that oracle.
3. Deliberate differences, signatures, ``get_config``, and bad input (``ValueError``/``TypeError``
   naming the argument).

Tolerances: ``_native.rtol_for``: float64 ``1e-12``, float32 ``8·eps·log2(n)`` with ``n`` the
number of embedding/probability elements. Gradients are compared relative to their largest
element (an element that is mathematically 0 comes out as a rounding residue of its neighbours'
size), as the parity matrix does. SDML against MXNet in float32: MXNet's float32 ``log_softmax`` is
off by up to 4.4e-6 *absolute* per entry (docs/conventions.md), and SDML is a KL divergence
``Σt·log t - Σt·log p`` whose labels sum to 1, so its values accept an absolute 1e-5 (the
Gluon softmax family's documented policy) and its gradients 1e-5 times the size of the terms
``Σ_j 2|x1_i - x2_j|`` the softmax error multiplies. Central differences use a step of 1e-6 on
float64: truncation ``O(h²)`` and rounding ``eps·|f|/h`` keep them within 1e-6 of the gradient's
scale, the tolerance used there (a check of the derivative, not of rounding).
"""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
from _native import (
    KINDS,
    assert_close,
    kind_params,
    natives,
    needs,
    rtol_for,
    run_on,
    to_numpy,
)
from conftest import AUTOGRAD

import polyloss.gluon as pg
import polyloss.keras as pk

pytestmark = [pytest.mark.native]


torch, tf, keras, mx = natives("torch", "tensorflow", "keras", "mxnet")
needs_keras, needs_mxnet = needs("keras"), needs("mxnet")
DTYPES = ("float32", "float64")
N, D, C = 6, 5, 4


def _params(fn):
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


def check_grad(actual, expected, *, dtype, n, err_msg=""):
    """Same NaN/inf pattern; finite elements within ``rtol_for`` of the largest finite one."""
    a, e = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    assert a.shape == e.shape, f"{a.shape} != {e.shape} {err_msg}"
    finite = np.isfinite(e)
    np.testing.assert_array_equal(np.isnan(a), np.isnan(e), err_msg=err_msg)
    np.testing.assert_array_equal(a[np.isinf(e)], e[np.isinf(e)], err_msg=err_msg)
    scale = float(np.abs(e[finite]).max()) if finite.any() else 0.0
    np.testing.assert_allclose(a[finite], e[finite], rtol=0.0, err_msg=err_msg,
                               atol=rtol_for(dtype, n) * max(scale, 1.0 / max(n, 1)))


# ---- inputs ---------------------------------------------------------------------------------

def unit_rows(x):
    return x / np.sqrt((x * x).sum(axis=-1, keepdims=True))


def circle_inputs(case, dtype, rng):
    """``(labels int64 (n,), L2-normalised embeddings (n, D))``."""
    n = 1 if case == "batch1" else N
    x = unit_rows(rng.normal(size=(n, D)))
    y = rng.integers(0, 3, size=n)
    if n > 1:
        y[:2] = [0, 0]  # at least one positive pair
        y[2] = 1
    if case == "one_class":  # no negatives anywhere: every loss 0, all masked
        y[:] = 2
    elif case == "distinct":  # no positives anywhere
        y = np.arange(n) * 7 - 3
    elif case == "identical":  # exact unit vectors: distances exactly 0 (positive and negative)
        x[:3] = np.eye(D)[1]
        y[:3] = [0, 0, 1]
        x[3] = -np.eye(D)[1]  # distance exactly 2
    return y.astype(np.int64), x.astype(dtype)


def gce_inputs(case, dtype, rng, shape=(N, C)):
    """``(labels int64, probabilities)``; ``confident``: one-hot predictions, right in even rows
    and wrong (``p_y = 0``) in odd rows; ``uniform``: ``1/C`` everywhere."""
    z = rng.normal(0.0, 2.0, size=shape)
    p = np.exp(z - z.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    y = rng.integers(0, shape[-1], size=shape[:-1])
    if case == "confident":
        hit = y.copy()
        hit.reshape(-1)[1::2] = (hit.reshape(-1)[1::2] + 1) % shape[-1]
        p = np.eye(shape[-1])[hit]
    elif case == "uniform":
        p = np.full(shape, 1.0 / shape[-1])
    return y.astype(np.int64), p.astype(dtype)


def sdml_inputs(case, dtype, rng):
    n = 1 if case == "batch1" else N
    x1, x2 = rng.normal(size=(n, D)), rng.normal(size=(n, D))
    if case == "identical":
        x2 = x1.copy()
    elif case == "close":  # positives much closer than negatives
        x2 = x1 + 0.05 * x2
    return x1.astype(dtype), x2.astype(dtype)


# ---- NumPy float64 transcriptions of the native formulas -------------------------------------

def _softplus(x):
    return np.logaddexp(0.0, x)


def _logsumexp_rows(x):
    m = x.max(axis=1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        return np.log(np.exp(x - m).sum(axis=1)) + m[:, 0]


def circle_oracle(y_true, y_pred, ref_labels=None, ref_embeddings=None, remove_diagonal=True,
                  gamma=80.0, margin=0.4):
    """Keras 3.15's ``circle`` (losses.py) in float64: per-sample loss."""
    x = np.asarray(y_pred, dtype=np.float64)
    ref = x if ref_embeddings is None else np.asarray(ref_embeddings, dtype=np.float64)
    q = np.asarray(y_true).reshape(-1)
    k = q if ref_labels is None else np.asarray(ref_labels).reshape(-1)
    d = np.maximum(1.0 - x @ ref.T, 0.0)
    pos = q[:, None] == k[None, :]
    neg = ~pos
    if remove_diagonal:
        pos = pos & ~np.eye(len(q), len(k), dtype=bool)
    pw = np.maximum((margin + d) * pos, 0.0)
    nw = np.maximum((1 + margin - d) * neg, 0.0)
    p_loss = _logsumexp_rows(np.where(pos, -gamma * pw * (margin - d), -np.inf))
    n_loss = _logsumexp_rows(np.where(neg, gamma * nw * (1 - margin - d), -np.inf))
    return _softplus(p_loss + n_loss)


def circle_reduce(loss, reduction, sw=None):
    """Keras's masked reduction of ``circle``'s result: the mask is ``loss > 0``."""
    mask = (loss > 0).astype(np.float64)
    w = mask if sw is None else mask * np.asarray(sw, dtype=np.float64)
    if reduction in ("none", None):
        return loss * w
    if reduction == "sum":
        return np.sum(loss * w)
    if reduction == "mean_with_sample_weight" and sw is not None:
        den = w.sum()
    else:
        den = mask.sum()
    return np.sum(loss * w) / den if den else 0.0


def gce_oracle(y_true, y_pred, q):
    p = np.take_along_axis(np.asarray(y_pred, dtype=np.float64), np.asarray(y_true)[..., None], -1)[..., 0]
    return (1.0 - p ** q) / q


def sdml_oracle(x1, x2, s=0.3):
    """Gluon 1.9.1's ``SDMLLoss._loss`` in float64."""
    x1, x2 = np.asarray(x1, dtype=np.float64), np.asarray(x2, dtype=np.float64)
    n = x1.shape[0]
    d = ((x1[:, None, :] - x2[None, :, :]) ** 2).sum(axis=2)
    z = -d - (-d).max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    gold = np.eye(n)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = gold * (1 - s) + (1 - gold) * s / (n - 1)
    return (t * (np.log(t + 1e-12) - logp)).sum(axis=1)


def central_difference(f, arrays, argnum, h=1e-6):
    x = np.asarray(arrays[argnum], dtype=np.float64)
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        up, dn = x.copy(), x.copy()
        up[i] += h
        dn[i] -= h
        args_up = list(arrays)
        args_dn = list(arrays)
        args_up[argnum], args_dn[argnum] = up, dn
        g[i] = (np.sum(f(*args_up)) - np.sum(f(*args_dn))) / (2 * h)
    return g


def test_oracles_on_numbers_by_hand():
    # Circle, gamma=1, margin=0.4, unit vectors e0, e1, e0 with labels 0, 1, 0: sample 0 has the
    # positive 2 at distance 0 (weight 0.4 + 0, -γ·0.4·(0.4 - 0) = -0.16) and the negative 1 at
    # distance 1 (weight 1.4 - 1, γ·0.4·(0.6 - 1) = -0.16): softplus(-0.32); sample 1 has no
    # positive (0); sample 2 mirrors sample 0.
    x = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    y = np.array([0, 1, 0])
    expected = np.array([math.log1p(math.exp(-0.32)), 0.0, math.log1p(math.exp(-0.32))])
    for got in (circle_oracle(y, x, gamma=1.0), pk.circle(y, x, gamma=1.0)):
        np.testing.assert_allclose(got, expected, rtol=1e-15)
    # Circle(gamma=1.0) averages over the two non-zero samples only: softplus(-0.32)
    np.testing.assert_allclose(pk.Circle(gamma=1.0, dtype="float64")(y, x), expected[0], rtol=1e-15)
    # GCE, q = 0.5: p_y = 0.75 gives (1 - √0.75)/0.5 = 2 - √3; p_y = 0.25 gives (1 - 0.5)/0.5 = 1
    p = np.array([[0.25, 0.75], [0.25, 0.75]])
    for got in (gce_oracle(np.array([1, 0]), p, 0.5),
                pk.categorical_generalized_cross_entropy(np.array([1, 0]), p, q=0.5)):
        np.testing.assert_allclose(got, [2.0 - math.sqrt(3.0), 1.0], rtol=1e-15)
    # SDML, s = 0.3, x1 = x2 = [[0], [1]]: distances [[0, 1], [1, 0]], log_softmax(-d) of row 0 is
    # [-L, -1 - L] with L = log(1 + e^-1), labels [[0.7, 0.3], [0.3, 0.7]]; by symmetry both rows
    # give 0.7·(log 0.7 + L) + 0.3·(log 0.3 + 1 + L) (the 1e-12 inside the logs moves it by 1e-12)
    x1 = np.array([[0.0], [1.0]])
    big_l = math.log1p(math.exp(-1.0))
    row = 0.7 * (math.log(0.7 + 1e-12) + big_l) + 0.3 * (math.log(0.3 + 1e-12) + 1.0 + big_l)
    # (0.0024, a difference of terms of about 0.5: compared to a few ulps of those terms)
    for got in (sdml_oracle(x1, x1), pg.SDMLLoss()(x1, x1)):
        np.testing.assert_allclose(got, [row, row], rtol=0, atol=1e-15)


# =============================================================================================
# 1a. Keras: Circle and circle
# =============================================================================================

def tf_run(fn, arrays, wrt):
    """``(value, [d Σvalue / d arrays[i] for i in wrt])`` on TensorFlow tensors."""
    xs = [None if a is None else tf.constant(a) for a in arrays]
    with tf.GradientTape(persistent=True) as tape:
        for i in wrt:
            tape.watch(xs[i])
        out = fn(*xs)
        total = tf.reduce_sum(out)
    assert isinstance(out, tf.Tensor), type(out)
    return out.numpy(), [tape.gradient(total, xs[i]).numpy() for i in wrt]


def compare_tf(native_fn, mirror_fn, arrays, wrt, dtype, n, msg):
    ev, eg = tf_run(native_fn, arrays, wrt)
    gv, gg = tf_run(mirror_fn, arrays, wrt)
    assert_close(gv, ev, dtype=dtype, n=n, err_msg=msg)
    for g, e, i in zip(gg, eg, wrt, strict=True):
        check_grad(g, e, dtype=dtype, n=n, err_msg=f"d/d arg {i} {msg}")
    return ev


CIRCLE_CASES = ("random", "one_class", "distinct", "identical", "batch1")


@needs_keras
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CIRCLE_CASES)
def test_keras_circle_function_matches_keras(case, dtype, rng):
    y, x = circle_inputs(case, dtype, rng)
    plan = [{}, {"remove_diagonal": False}, {"gamma": 16.0, "margin": 0.25}]
    for kw in plan:
        ev = compare_tf(lambda t, p, kw=kw: keras.losses.circle(t, p, **kw),
                        lambda t, p, kw=kw: pk.circle(t, p, **kw), [y, x], [1], dtype, x.size,
                        f"{case} {kw}")
        assert ev.dtype == np.dtype(dtype)
        np.testing.assert_allclose(ev, circle_oracle(y, x, **kw), rtol=rtol_for(dtype, x.size))
        if case in ("one_class", "distinct", "batch1") and not kw:
            np.testing.assert_array_equal(ev, 0.0)


@needs_keras
@pytest.mark.parametrize("dtype", DTYPES)
def test_keras_circle_reference_embeddings_match_keras(dtype, rng):
    """``ref_labels``/``ref_embeddings`` (M = 4 rows, gradients w.r.t. both embedding arrays),
    each alone, labels given as ``(N, 1)``."""
    y, x = circle_inputs("random", dtype, rng)
    ref = unit_rows(rng.normal(size=(4, D))).astype(dtype)
    ref_y = np.array([0, 1, 2, 0], dtype=np.int64)
    compare_tf(lambda t, p, rl, re: keras.losses.circle(t, p, rl, re),
               lambda t, p, rl, re: pk.circle(t, p, rl, re), [y, x, ref_y, ref], [1, 3], dtype,
               x.size, "ref both")
    ref6 = unit_rows(rng.normal(size=(N, D))).astype(dtype)
    compare_tf(lambda t, p, re: keras.losses.circle(t, p, ref_embeddings=re),
               lambda t, p, re: pk.circle(t, p, ref_embeddings=re), [y, x, ref6], [1, 2], dtype,
               x.size, "ref embeddings only")
    ref_y6 = rng.integers(0, 3, size=N).astype(np.int64)
    compare_tf(lambda t, p, rl: keras.losses.circle(t, p, ref_labels=rl),
               lambda t, p, rl: pk.circle(t, p, ref_labels=rl), [y, x, ref_y6], [1], dtype, x.size,
               "ref labels only")
    compare_tf(keras.losses.circle, pk.circle, [y[:, None], x], [1], dtype, x.size, "(N, 1) labels")


KERAS_REDUCTIONS = ("sum_over_batch_size", "sum", "mean", "none", None, "mean_with_sample_weight")


@needs_keras
@pytest.mark.parametrize("dtype", DTYPES)
def test_keras_circle_class_matches_keras(dtype, rng):
    """Every reduction, with and without weights (one of them 0), ``dtype=None`` (float32 whatever
    the input) and ``'float64'``, on random inputs; the default reduction and ``'sum'`` with
    weights on the edges (all masked: 0)."""
    plan = [("random", red, weighted, kd) for red in KERAS_REDUCTIONS for weighted in (False, True)
            for kd in (None, "float64")]
    plan += [(case, red, weighted, None) for case in CIRCLE_CASES[1:]
             for red, weighted in (("sum_over_batch_size", False), ("sum", True),
                                   ("mean_with_sample_weight", True))]
    for case, red, weighted, kd in plan:
        y, x = circle_inputs(case, dtype, rng)
        sw = None
        if weighted:
            sw = rng.uniform(0.0, 2.0, size=y.shape)
            sw[0] = 0.0
            sw = sw.astype(dtype)
        cdtype = kd or "float32"
        msg = f"{case} {red} weighted={weighted} dtype={kd}"
        ev = compare_tf(lambda t, p, w, red=red, kd=kd: keras.losses.Circle(reduction=red, dtype=kd)(t, p, w),
                        lambda t, p, w, red=red, kd=kd: pk.Circle(reduction=red, dtype=kd)(t, p, w),
                        [y, x, sw], [1], cdtype, x.size, msg)
        assert ev.dtype == np.dtype(cdtype)
        np.testing.assert_allclose(ev, circle_reduce(circle_oracle(y, x), red, sw),
                                   rtol=rtol_for(cdtype, x.size), err_msg=msg)


# =============================================================================================
# 1b. Keras: generalized cross-entropy
# =============================================================================================

GCE_CASES = ("random", "confident", "uniform", "batch1", "3d")


def _gce_case(case, dtype, rng):
    shape = {"batch1": (1, C), "3d": (N, 3, C)}.get(case, (N, C))
    return gce_inputs(case if case in ("confident", "uniform") else "random", dtype, rng, shape)


@needs_keras
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", GCE_CASES)
def test_keras_gce_function_matches_keras(case, dtype, rng):
    y, p = _gce_case(case, dtype, rng)
    for q in (0.5, 0.7, 0.1):
        ev = compare_tf(lambda t, x, q=q: keras.losses.categorical_generalized_cross_entropy(t, x, q),
                        lambda t, x, q=q: pk.categorical_generalized_cross_entropy(t, x, q), [y, p], [1],
                        dtype, p.size, f"{case} q={q}")
        np.testing.assert_allclose(ev, gce_oracle(y, p, q), rtol=rtol_for(dtype, p.size))
    if case == "confident":  # right: 0; wrong: 1/q (Keras's gradient there: -inf and NaN)
        np.testing.assert_array_equal(ev.reshape(-1), np.resize([0.0, 10.0], ev.size).astype(dtype))


@needs_keras
@pytest.mark.parametrize("dtype", DTYPES)
def test_keras_gce_class_matches_keras(dtype, rng):
    for case in ("random", "confident", "3d"):
        y, p = _gce_case(case, dtype, rng)
        for red in KERAS_REDUCTIONS:
            for weighted in (False, True):
                for kd in ((None, "float64") if case == "random" else (None,)):
                    sw = rng.uniform(0.0, 2.0, size=y.shape).astype(dtype) if weighted else None
                    compare_tf(lambda t, x, w, red=red, kd=kd: keras.losses
                               .CategoricalGeneralizedCrossEntropy(q=0.7, reduction=red, dtype=kd)(t, x, w),
                               lambda t, x, w, red=red, kd=kd: pk
                               .CategoricalGeneralizedCrossEntropy(q=0.7, reduction=red, dtype=kd)(t, x, w),
                               [y, p, sw], [1], kd or "float32", p.size, f"{case} {red} {weighted} {kd}")


# =============================================================================================
# 1c. Gluon: SDMLLoss
# =============================================================================================

def gluon_run(ns, ctor, x1, x2):
    """``(value, d Σ / d x1, d Σ / d x2)`` on classic ``mx.nd`` arrays under ``autograd``."""
    from mxnet import autograd

    a, b = mx.nd.array(x1, dtype=x1.dtype), mx.nd.array(x2, dtype=x2.dtype)
    a.attach_grad()
    b.attach_grad()
    with autograd.record():
        out = ns.SDMLLoss(**ctor)(a, b)
    out.backward()
    assert isinstance(out, mx.nd.NDArray) and not isinstance(out, mx.np.ndarray), type(out)
    return to_numpy(out), to_numpy(a.grad), to_numpy(b.grad)


@needs_mxnet
@pytest.mark.parametrize("case", ["random", "identical", "close", "batch1"])
def test_gluon_sdml_matches_gluon(case, rng):
    """float32 (MXNet's only dtype here): values within 1e-5 absolute, gradients within 1e-5 of
    ``Σ_j 2|x1_i - x2_j|`` (MXNet's float32 ``log_softmax``, see the module docstring);
    ``weight`` and ``batch_axis`` are ignored by Gluon and by the mirror."""
    from mxnet.gluon import loss as gloss

    x1, x2 = sdml_inputs(case, "float32", rng)
    a, b = x1.astype(np.float64), x2.astype(np.float64)
    diff = np.abs(a[:, None, :] - b[None, :, :])
    g1_scale, g2_scale = 2 * diff.sum(axis=1), 2 * diff.sum(axis=0)
    for ctor in ({}, {"smoothing_parameter": 0.1}, {"weight": 3.0, "batch_axis": 1}):
        ev, e1, e2 = gluon_run(gloss, ctor, x1, x2)
        gv, g1, g2 = gluon_run(pg, ctor, x1, x2)
        assert gv.dtype == ev.dtype == np.float32
        msg = f"{case} {ctor}"
        if case == "batch1":  # 0·s/0 in Gluon's off-diagonal labels
            assert np.isnan(ev).all() and np.isnan(gv).all(), msg
            continue
        assert_close(gv, ev, dtype="float32", n=x1.size, atol=1e-5, err_msg=msg)
        np.testing.assert_allclose(g1, e1, rtol=0, atol=1e-5 * g1_scale.max() + 1e-7, err_msg=msg)
        np.testing.assert_allclose(g2, e2, rtol=0, atol=1e-5 * g2_scale.max() + 1e-7, err_msg=msg)
        s = ctor.get("smoothing_parameter", 0.3)
        np.testing.assert_allclose(gv, sdml_oracle(x1, x2, s), rtol=rtol_for("float32", x1.size),
                                   atol=1e-6, err_msg=msg)


@needs_mxnet
def test_gluon_sdml_float64_is_a_deliberate_difference(rng):
    """MXNet's SDMLLoss fails on float64 (its labels are a float32 ``eye``); the mirror computes in
    float64 and equals the float64 transcription of Gluon's formula."""
    from mxnet.gluon import loss as gloss

    x1, x2 = sdml_inputs("random", "float64", rng)
    with pytest.raises(mx.base.MXNetError):
        gloss.SDMLLoss()(mx.nd.array(x1, dtype="float64"), mx.nd.array(x2, dtype="float64")).asnumpy()
    got = pg.SDMLLoss()(mx.nd.array(x1, dtype="float64"), mx.nd.array(x2, dtype="float64"))
    assert_close(to_numpy(got), sdml_oracle(x1, x2), dtype="float64", n=x1.size)


# =============================================================================================
# 2. every array type and every autograd backend, against the oracles
# =============================================================================================

def _jit_on_jax(name, fn):
    """JAX runs each call under ``jax.jit`` (compiled mode, and one compilation per function
    instead of one per eager operation, which the time budget needs)."""
    if name != "jax":
        return fn
    import jax

    return jax.jit(fn)


@pytest.mark.parametrize("kind", kind_params())
def test_mirrors_on_every_array_type(kind, rng):
    """Function forms in float64 and the float32-computing classes (float64 inputs), returned
    as the caller's array type (JAX: under ``jax.jit``)."""
    run_on_kind = run_on
    if kind.name == "jax":
        def run_on_kind(k, fn, *arrays):
            return run_on(k, _jit_on_jax("jax", fn), *arrays)
    for case, reductions in (("identical", ("sum_over_batch_size", "mean_with_sample_weight")),
                             ("one_class", ("sum_over_batch_size",))):
        y, x = circle_inputs(case, "float64", rng)
        got = run_on_kind(kind, pk.circle, y, x)
        assert_close(got, circle_oracle(y, x), dtype="float64", n=x.size, err_msg=case)
        w = rng.uniform(0.5, 2.0, size=y.shape)
        for red in reductions:
            got = run_on_kind(kind, lambda t, p, sw, red=red: pk.Circle(reduction=red)(t, p, sw), y, x, w)
            assert_close(got, np.float32(circle_reduce(circle_oracle(y, x), red, w)), dtype="float32",
                         n=x.size, err_msg=f"{case} {red}")
    for case in ("confident", "3d"):
        y, p = _gce_case(case, "float64", rng)
        got = run_on_kind(kind, lambda t, x: pk.categorical_generalized_cross_entropy(t, x, 0.7), y, p)
        assert_close(got, gce_oracle(y, p, 0.7), dtype="float64", n=p.size, err_msg=case)
        gce_sum = pk.CategoricalGeneralizedCrossEntropy(reduction="sum")
        got = run_on_kind(kind, lambda t, x, gce_sum=gce_sum: gce_sum(t, x), y, p)
        assert_close(got, np.float32(gce_oracle(y, p, 0.5).sum()), dtype="float32", n=p.size)
    for case in ("identical",):
        x1, x2 = sdml_inputs(case, "float64", rng)
        got = run_on_kind(kind, pg.SDMLLoss(), x1, x2)
        assert_close(got, sdml_oracle(x1, x2), dtype="float64", n=x1.size, err_msg=case)


@pytest.mark.parametrize("backend", [pytest.param(b, id=b.name) for b in AUTOGRAD])
def test_mirror_gradients_by_central_differences(backend, rng):
    """d Σ/d embeddings (Circle, with and without reference embeddings), d Σ/d probabilities
    (GCE) and d Σ/d x1 (SDML) on every autograd backend (JAX under ``jax.jit``), float64 (the
    class reductions' and ``x2``'s gradients are checked against Keras and Gluon in part 1)."""
    backend.setup()
    y, x = circle_inputs("random", "float64", rng)
    ref = unit_rows(rng.normal(size=(4, D)))
    ref_y = np.array([0, 1, 2, 0])
    runs = [
        (lambda t, e: pk.circle(t, e, gamma=16.0), lambda t, e: circle_oracle(t, e, gamma=16.0), [y, x], 1),
        (lambda t, e, rl, re: pk.circle(t, e, rl, re, gamma=16.0),
         lambda t, e, rl, re: circle_oracle(t, e, rl, re, gamma=16.0), [y, x, ref_y, ref], 3),
    ]
    yl, p = gce_inputs("random", "float64", rng)
    runs.append((lambda t, q: pk.categorical_generalized_cross_entropy(t, q, 0.7),
                 lambda t, q: gce_oracle(t, q, 0.7), [yl, p], 1))
    x1, x2 = sdml_inputs("random", "float64", rng)
    runs.append((pg.SDMLLoss(), sdml_oracle, [x1, x2], 0))
    for i, (fn, oracle, arrays, argnum) in enumerate(runs):
        value, grad = backend.value_and_grad(_jit_on_jax(backend.name, fn), arrays, argnum)
        assert_close(np.asarray(value).reshape(np.shape(oracle(*arrays))), oracle(*arrays),
                     dtype="float64", n=arrays[1].size, err_msg=f"run {i}")
        fd = central_difference(oracle, arrays, argnum)
        np.testing.assert_allclose(grad, fd, rtol=0, atol=1e-6 * np.abs(fd).max(), err_msg=f"run {i}")


@needs_keras
@pytest.mark.parametrize("backend", [pytest.param(b, id=b.name) for b in AUTOGRAD])
def test_keras_gradients_on_every_autograd_backend(backend, rng):
    """Keras's own gradients (TensorFlow) reproduced on every autograd backend: Circle at exact
    zero distances (TensorFlow's ``max(d, 0)`` tie passes the gradient) and GCE at ``p_y = 0``
    (``-inf`` for the true class, NaN for the others)."""
    backend.setup()
    y, x = circle_inputs("identical", "float64", rng)
    ev, (eg,) = tf_run(keras.losses.circle, [y, x], [1])
    value, grad = backend.value_and_grad(pk.circle, [y, x], 1)
    assert_close(value, ev, dtype="float64", n=x.size)
    check_grad(grad, eg, dtype="float64", n=x.size)
    yl, p = gce_inputs("confident", "float64", rng)
    ev, (eg,) = tf_run(lambda t, q: keras.losses.categorical_generalized_cross_entropy(t, q, 0.5),
                       [yl, p], [1])
    value, grad = backend.value_and_grad(lambda t, q: pk.categorical_generalized_cross_entropy(t, q, 0.5),
                                         [yl, p], 1)
    assert_close(value, ev, dtype="float64", n=p.size)
    assert np.isinf(eg).any() and np.isnan(eg).any()  # the case really reaches p_y = 0
    check_grad(grad, eg, dtype="float64", n=p.size)


# =============================================================================================
# 3. deliberate differences, signatures, configs, bad input
# =============================================================================================

@needs_keras
def test_keras_gce_column_labels_are_squeezed(rng):
    """Keras broadcasts ``(N, 1)`` labels against ``(N, C)`` into an ``(N, N)`` result (its
    docstring promises ``[batch_size, 1]`` works); the mirror squeezes them."""
    y, p = gce_inputs("random", "float64", rng)
    native = keras.losses.categorical_generalized_cross_entropy(tf.constant(y[:, None]), tf.constant(p), 0.5)
    assert tuple(native.shape) == (N, N)
    np.testing.assert_array_equal(pk.categorical_generalized_cross_entropy(y[:, None], p, 0.5),
                                  pk.categorical_generalized_cross_entropy(y, p, 0.5))


@needs_keras
def test_keras_signatures_and_configs_match_keras():
    for name in ("Circle", "CategoricalGeneralizedCrossEntropy"):
        n_cls, m_cls = getattr(keras.losses, name), getattr(pk, name)
        assert _params(m_cls.__init__) == _params(n_cls.__init__), name
        assert _params(m_cls.__call__) == _params(n_cls.__call__), name
        assert m_cls().get_config() == n_cls().get_config(), name
        kw = {"gamma": 32.0, "margin": 0.3, "remove_diagonal": False} if name == "Circle" else {"q": 0.2}
        kw.update(reduction="sum", name="mine")
        assert m_cls(**kw).get_config() == n_cls(**kw).get_config(), name
        assert m_cls.from_config(m_cls(**kw).get_config()).get_config() == m_cls(**kw).get_config()
    for name in ("circle", "categorical_generalized_cross_entropy"):
        assert _params(getattr(pk, name)) == _params(getattr(keras.losses, name)), name
    for q in (0.0, 1.0, -0.5, 2.0):
        with pytest.raises(ValueError, match="q must be in the interval"):
            keras.losses.CategoricalGeneralizedCrossEntropy(q=q)
        with pytest.raises(ValueError, match="q must be in the interval"):
            pk.CategoricalGeneralizedCrossEntropy(q=q)


@needs_mxnet
def test_gluon_sdml_signature_matches_gluon():
    from mxnet.gluon import loss as gloss

    assert _params(pg.SDMLLoss.__init__) == _params(gloss.SDMLLoss.__init__)
    assert [p[0] for p in _params(pg.SDMLLoss.__call__)] == ["self", "x1", "x2"]


@pytest.mark.parametrize("kind", kind_params(exclude=("mx.np", "dask", "array_api_strict", "jax")))
def test_bad_input_raises_naming_the_argument(kind, rng):
    conv = KINDS[kind.name].asarray
    y, x = circle_inputs("random", "float64", rng)
    bad = [
        (lambda: pk.circle(conv(y), conv(x[0])), ValueError, "y_pred"),
        (lambda: pk.circle(conv(y), conv(x[None])), ValueError, "y_pred"),
        (lambda: pk.circle(conv(y[:4]), conv(x)), ValueError, "y_true"),
        (lambda: pk.circle(conv(np.stack([y, y], 1)), conv(x)), ValueError, "y_true"),
        (lambda: pk.circle(conv(y + 0.5), conv(x)), ValueError, "y_true"),
        (lambda: pk.Circle()(conv(y + 0.5), conv(x)), ValueError, "y_true"),
        (lambda: pk.circle(conv(y), conv(x), ref_embeddings=conv(x[:, :3])), ValueError, "ref_embeddings"),
        (lambda: pk.circle(conv(y), conv(x), ref_labels=conv(y[:3])), ValueError, "ref_labels"),
        (lambda: pk.circle(conv(y), conv(x), ref_embeddings=conv(x[:3])), ValueError, "y_true"),
        (lambda: pk.circle(conv(y), conv(y)), TypeError, "y_pred"),
        (lambda: pk.circle(conv(y), conv(x), gamma="80"), TypeError, "gamma"),
        (lambda: pk.Circle(margin=None), TypeError, "margin"),
    ]
    yl, p = gce_inputs("random", "float64", rng)
    bad += [
        (lambda: pk.categorical_generalized_cross_entropy(conv(yl + C), conv(p), 0.5), ValueError, "y_true"),
        (lambda: pk.categorical_generalized_cross_entropy(conv(yl - 1 - yl.max()), conv(p), 0.5), ValueError,
         "y_true"),
        (lambda: pk.CategoricalGeneralizedCrossEntropy()(conv(yl + C), conv(p)), ValueError, "y_true"),
        (lambda: pk.categorical_generalized_cross_entropy(conv(yl[:3]), conv(p), 0.5), ValueError, "y_true"),
        (lambda: pk.categorical_generalized_cross_entropy(conv(yl + 0.5), conv(p), 0.5), ValueError,
         "y_true"),
        (lambda: pk.categorical_generalized_cross_entropy(conv(yl), conv(p), 0), ValueError, "q"),
        (lambda: pk.categorical_generalized_cross_entropy(conv(yl), conv(p), "0.5"), TypeError, "q"),
    ]
    x1, x2 = sdml_inputs("random", "float64", rng)
    bad += [
        (lambda: pg.SDMLLoss()(conv(x1), conv(x2[:4])), ValueError, "x1"),
        (lambda: pg.SDMLLoss()(conv(x1[None]), conv(x2[None])), ValueError, "x1"),
        (lambda: pg.SDMLLoss(smoothing_parameter="0.3"), TypeError, "smoothing_parameter"),
    ]
    for call, exc, name in bad:
        with pytest.raises(exc, match=name):
            call()


def test_out_of_range_labels_are_nan_under_jit(rng):
    """Labels cannot be read under ``jax.jit``: an out-of-range GCE label gives NaN there (Keras
    gives 1/q from an all-zero one-hot)."""
    (jax,) = natives("jax")
    if jax is None:
        pytest.skip("jax is not installed in this environment")
    yl, p = gce_inputs("random", "float64", rng)
    yl[2] = C
    out = jax.jit(lambda t, q: pk.categorical_generalized_cross_entropy(t, q, 0.5))(
        KINDS["jax"].asarray(yl), KINDS["jax"].asarray(p))
    out = np.asarray(out)
    assert np.isnan(out[2]) and np.isfinite(np.delete(out, 2)).all()

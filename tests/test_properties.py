"""Properties of the canonical losses, with hypothesis over shapes, dtypes and values.

Deterministic for CI (``derandomize=True``, no example database, no deadline) and small
(``max_examples`` per property), with many properties: non-negativity where it holds, zero
loss at a perfect prediction, reduction consistency (``sum = mean x count``, ``none`` summed
= ``sum``), linearity in the sample weights, invariance to a permutation of the classes,
gradients against central finite differences, and every installed backend against the NumPy
float64 oracle. Expected values come from the formulas' own identities (no stored numbers).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import AUTOGRAD, INSTALLED
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import polyloss

CI = settings(derandomize=True, database=None, deadline=None, max_examples=12,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
FEW = settings(CI, max_examples=6)

DTYPES = st.sampled_from(["float32", "float64"])
SHAPES = st.sampled_from([(1,), (5,), (3, 4), (2, 3, 2)])
CLASS_SHAPES = st.sampled_from([(1, 2), (4, 3), (3, 5)])
SEEDS = st.integers(0, 2**32 - 1)


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _rtol(dtype: str, n: int = 1) -> float:
    return 1e-12 if dtype == "float64" else 8 * float(np.finfo(np.float32).eps) * max(1.0, np.log2(n))


# ---- the losses under test, each with its own input maker ------------------------------------------
# make(rng, shape, dtype) -> (args, kwargs); ``perfect`` gives a prediction the loss scores 0.

def _reg(rng, shape, dtype):
    return [rng.normal(size=shape).astype(dtype), rng.normal(size=shape).astype(dtype)]


def _pos(rng, shape, dtype):
    return [rng.uniform(0.5, 3.0, size=shape).astype(dtype), rng.uniform(0.5, 3.0, size=shape).astype(dtype)]


def _bin_logits(rng, shape, dtype):
    return [(3 * rng.normal(size=shape)).astype(dtype), (rng.random(shape) < 0.5).astype(dtype)]


def _bin_probs(rng, shape, dtype):
    return [rng.uniform(0.01, 0.99, size=shape).astype(dtype), (rng.random(shape) < 0.5).astype(dtype)]


def _signed(rng, shape, dtype):
    return [rng.normal(size=shape).astype(dtype), np.where(rng.random(shape) < 0.5, -1.0, 1.0).astype(dtype)]


def _class_index(rng, shape, dtype):
    n, c = shape[0], shape[-1]
    return [(2 * rng.normal(size=(n, c))).astype(dtype), rng.integers(0, c, size=n)]


def _class_probs(rng, shape, dtype):
    n, c = shape[0], shape[-1]
    t = rng.random((n, c)) + 0.05
    return [(2 * rng.normal(size=(n, c))).astype(dtype), (t / t.sum(-1, keepdims=True)).astype(dtype)]


def _log_probs_pair(rng, shape, dtype):
    n, c = shape[0], shape[-1]
    q, p = rng.random((n, c)) + 0.05, rng.random((n, c)) + 0.05
    q, p = q / q.sum(-1, keepdims=True), p / p.sum(-1, keepdims=True)
    return [np.log(q).astype(dtype), p.astype(dtype)]


ELEMENTWISE = {  # name: (call, make, non-negative, perfect prediction scores 0)
    "mse": (polyloss.mse, _reg, True, True),
    "mae": (polyloss.mae, _reg, True, True),
    "huber": (lambda p, t, **k: polyloss.huber(p, t, delta=0.7, **k), _reg, True, True),
    "smooth_l1": (lambda p, t, **k: polyloss.smooth_l1(p, t, beta=0.5, **k), _reg, True, True),
    "log_cosh": (polyloss.log_cosh, _reg, True, True),
    "quantile": (lambda p, t, **k: polyloss.quantile(p, t, q=0.3, **k), _reg, True, True),
    "mape": (polyloss.mape, _pos, True, True),
    "msle": (polyloss.msle, _pos, True, True),
    "bce_logits": (lambda p, t, **k: polyloss.binary_cross_entropy(p, t, from_logits=True, **k),
                   _bin_logits, True, False),
    "bce_probs": (polyloss.binary_cross_entropy, _bin_probs, True, True),
    "focal": (lambda p, t, **k: polyloss.focal(p, t, gamma=2.0, **k), _bin_logits, True, False),
    "hinge": (polyloss.hinge, _signed, True, False),
    "squared_hinge": (polyloss.squared_hinge, _signed, True, False),
    "soft_margin": (polyloss.soft_margin, _signed, True, False),
}
CLASSWISE = {  # (call, make, non-negative)
    "cross_entropy": (polyloss.cross_entropy, _class_index, True),
    "cross_entropy_probs": (polyloss.cross_entropy, _class_probs, True),
    "label_smoothed_ce": (lambda p, t, **k: polyloss.cross_entropy(p, t, label_smoothing=0.2, **k),
                          _class_index, True),
    "poly1": (polyloss.poly1_cross_entropy, _class_index, True),
    "focal_categorical": (lambda p, t, **k: polyloss.focal(p, t, kind="categorical", **k),
                          _class_index, True),
    "categorical_hinge": (polyloss.categorical_hinge, _class_index, True),
    "multi_margin": (polyloss.multi_margin, _class_index, True),
    "kl_div": (polyloss.kl_div, _log_probs_pair, True),
}
ALL = {**{k: v[:2] for k, v in ELEMENTWISE.items()}, **{k: v[:2] for k, v in CLASSWISE.items()}}


def _perfect(name: str, args: list) -> list:
    """The prediction equal to the target (for ``bce_probs``: probabilities exactly 0 and 1)."""
    return [args[1].copy(), args[1]]


# ---- properties ------------------------------------------------------------------------------------------

@CI
@given(name=st.sampled_from(sorted(ELEMENTWISE) + sorted(CLASSWISE)), shape=SHAPES, dtype=DTYPES,
       seed=SEEDS)
def test_non_negative(name, shape, dtype, seed):
    call, make = ALL[name]
    out = np.asarray(call(*make(_rng(seed), shape if name in ELEMENTWISE else shape + (3,), dtype),
                          reduction="none"))
    # exactly >= 0: every one of these is a sum of non-negative terms or a clipped maximum
    assert np.all(out >= 0), (name, out[out < 0])


@CI
@given(name=st.sampled_from([k for k, v in ELEMENTWISE.items() if v[3]]), shape=SHAPES, dtype=DTYPES,
       seed=SEEDS)
def test_zero_at_a_perfect_prediction(name, shape, dtype, seed):
    call, make = ALL[name]
    args = _perfect(name, make(_rng(seed), shape, dtype))
    out = np.asarray(call(*args, reduction="none"))
    assert np.all(out == 0), (name, out)


@CI
@given(shape=CLASS_SHAPES, dtype=DTYPES, seed=SEEDS)
def test_zero_at_a_perfect_prediction_classwise(shape, dtype, seed):
    rng = _rng(seed)
    logq, p = _log_probs_pair(rng, shape, dtype)
    # KL(p‖p) = 0 and NLL of log-probability 0 at the target is 0 (by hand)
    kl = np.asarray(polyloss.kl_div(np.log(p).astype(dtype), p, reduction="none"))
    np.testing.assert_allclose(kl, 0.0, atol=8 * float(np.finfo(dtype).eps))
    labels = rng.integers(0, shape[1], size=shape[0])
    logp = np.where(np.arange(shape[1]) == labels[:, None], 0.0, -np.inf).astype(dtype)
    assert np.all(np.asarray(polyloss.nll(logp, labels, reduction="none")) == 0)
    # hinge losses: every margin met
    scores = np.where(np.arange(shape[1]) == labels[:, None], 5.0, 0.0).astype(dtype)
    assert np.all(np.asarray(polyloss.multi_margin(scores, labels, reduction="none")) == 0)
    assert np.all(np.asarray(polyloss.categorical_hinge(scores, labels, reduction="none")) == 0)


@CI
@given(name=st.sampled_from(sorted(ALL)), shape=SHAPES, dtype=DTYPES, seed=SEEDS)
def test_reductions_agree(name, shape, dtype, seed):
    call, make = ALL[name]
    args = make(_rng(seed), shape if name in ELEMENTWISE else shape + (3,), dtype)
    none = np.asarray(call(*args, reduction="none"), dtype=np.float64)
    total = float(call(*args, reduction="sum"))
    mean = float(call(*args, reduction="mean"))
    tol = _rtol(dtype, none.size)
    assert total == pytest.approx(float(none.sum()), rel=tol, abs=tol)
    assert total == pytest.approx(mean * none.size, rel=tol, abs=tol)


@CI
@given(name=st.sampled_from(sorted(ELEMENTWISE)), shape=SHAPES, seed=SEEDS,
       c=st.floats(0.125, 8.0, allow_nan=False))
def test_linear_in_the_sample_weight(name, shape, seed, c):
    call, make = ALL[name]
    rng = _rng(seed)
    args = make(rng, shape, "float64")
    w1, w2 = rng.uniform(0, 2, size=shape), rng.uniform(0, 2, size=shape)
    f = lambda w: float(call(*args, sample_weight=w, reduction="sum"))  # noqa: E731
    scale = abs(f(w1)) + abs(f(w2)) + 1e-300
    assert abs(f(w1 + w2) - (f(w1) + f(w2))) <= 1e-12 * scale
    assert f(c * w1) == pytest.approx(c * f(w1), rel=1e-12, abs=1e-300)
    # per-sample weights broadcast along the trailing axes: the same as the expanded weight
    per_sample = rng.uniform(0, 2, size=shape[:1])
    expanded = np.broadcast_to(per_sample.reshape(shape[:1] + (1,) * (len(shape) - 1)), shape)
    assert f(per_sample) == pytest.approx(f(np.array(expanded)), rel=1e-12, abs=1e-300)


@CI
@given(name=st.sampled_from(sorted(CLASSWISE)), shape=CLASS_SHAPES, dtype=DTYPES, seed=SEEDS)
def test_invariant_to_a_permutation_of_the_classes(name, shape, dtype, seed):
    call, make = ALL[name]
    rng = _rng(seed)
    pred, target = make(rng, shape, dtype)
    perm = rng.permutation(shape[1])
    pred_p = pred[:, perm]
    if target.dtype.kind in "iu":  # class c moved to position inverse[c]
        target_p = np.argsort(perm)[target]
    else:
        target_p = target[:, perm]
    a = np.asarray(call(pred, target, reduction="none"), dtype=np.float64)
    b = np.asarray(call(pred_p, target_p, reduction="none"), dtype=np.float64)
    np.testing.assert_allclose(b, a, rtol=_rtol(dtype, shape[1]), atol=_rtol(dtype, shape[1]))


SMOOTH = ["mse", "log_cosh", "bce_logits", "focal", "soft_margin", "cross_entropy",
          "cross_entropy_probs", "label_smoothed_ce", "poly1", "focal_categorical", "kl_div"]


@pytest.mark.skipif(not AUTOGRAD, reason="no autograd backend installed")
@FEW
@given(name=st.sampled_from(SMOOTH), shape=CLASS_SHAPES, seed=SEEDS)
def test_gradient_agrees_with_central_differences(name, shape, seed):
    b = AUTOGRAD[0]
    b.setup()
    call, make = ALL[name]
    args = make(_rng(seed), shape if name not in ELEMENTWISE else shape, "float64")
    _, grad = b.value_and_grad(lambda *xs: call(*xs, reduction="sum"), args, 0)
    x = args[0]
    h = 1e-6 * np.maximum(1.0, np.abs(x))
    numeric = np.empty_like(x)
    for i in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[i] += h[i]
        down[i] -= h[i]
        numeric[i] = (float(call(up, *args[1:], reduction="sum"))
                      - float(call(down, *args[1:], reduction="sum"))) / (2 * h[i])
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-7)


# every backend against the NumPy float64 oracle (a few shapes, so compiled kernels are reused)
AGREE = ["mse", "huber", "log_cosh", "bce_logits", "focal", "hinge", "cross_entropy",
         "cross_entropy_probs", "multi_margin", "kl_div"]


@pytest.mark.parametrize("backend_name", [b.name for b in INSTALLED if b.name != "numpy"])
def test_every_backend_agrees_with_the_numpy_oracle(backend_name):
    b = next(x for x in INSTALLED if x.name == backend_name)
    b.setup()

    @FEW
    @given(name=st.sampled_from(AGREE), shape=st.sampled_from([(4, 3)]), dtype=DTYPES, seed=SEEDS,
           reduction=st.sampled_from(["none", "mean"]))
    def check(name, shape, dtype, seed, reduction):
        call, make = ALL[name]
        args = make(_rng(seed), shape, dtype)
        oracle = np.asarray(call(*[a.astype(np.float64) if a.dtype.kind == "f" else a for a in args],
                                 reduction=reduction))
        got = np.asarray(b.to_numpy(call(*[b.asarray(a) for a in args], reduction=reduction)),
                         dtype=np.float64)
        np.testing.assert_allclose(got, oracle, rtol=_rtol(dtype, 12), atol=_rtol(dtype, 12))

    check()

"""Shared tables and helpers for the ``test_canonical_*`` files (plus the tests of the helpers).

Everything that says what a canonical loss *should* be lives here and is written by hand in
NumPy float64 from the mathematics, independently of polyloss: the elementwise formulas
(``hand``), their derivatives with respect to the prediction (``dpred``), and the
reductions (``hand_reduce``). The parity files compare every backend with the *oracle*
(polyloss itself on NumPy float64 arrays made from the same cast inputs); the tests at the
bottom of this file and in ``test_canonical_values.py`` pin that oracle to these formulas,
which is what anchors the numbers.

The other ``test_canonical_*`` files import it by name (``tests/`` is on ``sys.path``, as for
``conftest`` and ``tests/_native.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from conftest import INSTALLED

import polyloss

EPS = {d: float(np.finfo(d).eps) for d in ("float16", "float32", "float64")}
# float16 inputs are computed in float32 by polyloss (and rounded once to float16 at the
# end), so their tolerance is the float16 rounding on top of the float32 computation.
COMPUTE = {"float16": "float32", "float32": "float32", "float64": "float64"}
FLOAT16_BACKENDS = ("numpy", "torch", "jax")  # the brief's float16 set


def dtypes_of(backend) -> tuple[str, ...]:
    extra = ("float16",) if backend.name in FLOAT16_BACKENDS else ()
    return tuple(backend.dtypes) + extra


def backend_dtype_params(backends=None) -> list:
    """``pytest.param(backend, dtype)`` for every installed backend and each of its dtypes."""
    out = []
    for b in INSTALLED if backends is None else backends:
        for dt in dtypes_of(b):
            out.append(pytest.param(b, dt, id=f"{b.name}-{dt}"))
    return out


# ---- the losses, by hand ----------------------------------------------------------------

@dataclass(frozen=True)
class Spec:
    """One canonical loss call and what it should compute, written independently of polyloss.

    ``hand(p, t)`` is the unreduced loss (for RMSE: the squared residual; ``post`` is applied
    after the reduction). ``dpred(p, t)`` is d(unreduced loss)/d(pred), elementwise (for
    RMSE: of the squared residual). ``domain`` picks the random inputs. ``terms(p, t)`` is the
    size of the intermediate terms of the elementwise formula, for losses whose formula
    cancels (MSLE); by default the loss itself. ``k32`` is the float32 elementwise error
    allowance in units of eps (see ``rtol``).
    """

    name: str
    call: Callable[..., Any]  # call(pred, target, **reduction_kwargs)
    hand: Callable[[np.ndarray, np.ndarray], np.ndarray]
    dpred: Callable[[np.ndarray, np.ndarray], np.ndarray]
    domain: str = "real"
    post: Callable[[Any], Any] | None = None
    terms: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
    k32: float = 4.0
    kinks: tuple[float, ...] = field(default_factory=tuple)  # |r| where the loss has a kink


def _sign(x):
    return np.sign(x)  # np.sign(0) == 0: the subgradient polyloss promises at a kink


def huber_formula(d):
    # 0.5 r^2 for |r| <= d, d (|r| - d/2) beyond: the textbook piecewise form
    def f(p, t):
        r = p - t
        return np.where(np.abs(r) <= d, 0.5 * r**2, d * (np.abs(r) - 0.5 * d))

    return f


def smooth_l1_formula(b):
    # 0.5 r^2 / b for |r| < b, |r| - b/2 beyond; b = 0 is |r|
    def f(p, t):
        r = p - t
        if b == 0:
            return np.abs(r)
        return np.where(np.abs(r) < b, 0.5 * r**2 / b, np.abs(r) - 0.5 * b)

    return f


def _log_cosh(p, t):
    # log(cosh(r)) straight from the definition; accurate for moderate |r| (the inputs here
    # keep |r| < 15). Near r = 0 cosh(r) rounds to 1 + r^2/2 with an absolute error of one
    # ulp of 1, so this hand formula itself is only good to ~eps absolutely there.
    return np.log(np.cosh(p - t))


def _mape(eps):
    def f(p, t):
        return 100.0 * np.abs(t - p) / np.maximum(np.abs(t), eps)

    return f


def _mape_grad(eps):
    def g(p, t):
        return 100.0 * _sign(p - t) / np.maximum(np.abs(t), eps)

    return g


def _msle(eps):
    def f(p, t):
        if eps is not None:
            p, t = np.maximum(p, eps), np.maximum(t, eps)
        return (np.log1p(p) - np.log1p(t)) ** 2

    return f


def _msle_grad(eps):
    def g(p, t):
        inside = np.ones_like(p) if eps is None else (p > eps).astype(float)
        if eps is not None:
            p, t = np.maximum(p, eps), np.maximum(t, eps)
        return inside * 2.0 * (np.log1p(p) - np.log1p(t)) / (1.0 + p)

    return g


def _msle_terms(eps):
    # (log1p p - log1p t)^2: the subtraction cancels when p ~ t, so the error of the result
    # is set by the size of log1p p and log1p t, not by the (small) difference: each log1p
    # is off by a few ulps of itself, which moves d by ~eps (|lp| + |lt|) and d^2 by twice
    # |d| times that. The tolerance is a few eps of this magnitude (the condition number).
    def terms(p, t):
        if eps is not None:
            p, t = np.maximum(p, eps), np.maximum(t, eps)
        lp, lt = np.log1p(p), np.log1p(t)
        d = lp - lt
        return d * d + 2.0 * np.abs(d) * (np.abs(lp) + np.abs(lt))

    return terms


def _pinball(q):
    # max(q r, (q - 1) r) with r = target - pred
    def f(p, t):
        r = t - p
        return np.maximum(q * r, (q - 1.0) * r)

    return f


def _pinball_grad(q):
    # d/dpred: -q where r = t - p >= 0 (r = 0 takes this branch), 1 - q where r < 0
    def g(p, t):
        return np.where(t - p >= 0, -q, 1.0 - q)

    return g


def _sqrt_post(eps):
    return lambda x: np.sqrt(x + eps)


def _sq(p, t):
    return (p - t) ** 2


def _dsq(p, t):
    return 2.0 * (p - t)


SPECS: list[Spec] = [
    Spec("mse", polyloss.mse, _sq, _dsq),
    Spec("mae", polyloss.mae, lambda p, t: np.abs(p - t), lambda p, t: _sign(p - t),
         kinks=(0.0,)),
    Spec("rmse", polyloss.rmse, _sq, _dsq, post=_sqrt_post(0.0)),
    Spec("rmse_eps1e-7", lambda p, t, **k: polyloss.rmse(p, t, epsilon=1e-7, **k), _sq, _dsq,
         post=_sqrt_post(1e-7)),
    Spec("huber", polyloss.huber, huber_formula(1.0), lambda p, t: np.clip(p - t, -1.0, 1.0),
         kinks=(0.0,)),
    Spec("huber_d2.5", lambda p, t, **k: polyloss.huber(p, t, delta=2.5, **k), huber_formula(2.5),
         lambda p, t: np.clip(p - t, -2.5, 2.5), kinks=(0.0,)),
    Spec("smooth_l1", polyloss.smooth_l1, smooth_l1_formula(1.0),
         lambda p, t: np.clip(p - t, -1.0, 1.0), kinks=(0.0,)),
    Spec("smooth_l1_b0.5", lambda p, t, **k: polyloss.smooth_l1(p, t, beta=0.5, **k),
         smooth_l1_formula(0.5), lambda p, t: np.clip((p - t) / 0.5, -1.0, 1.0), kinks=(0.0,)),
    Spec("smooth_l1_b0", lambda p, t, **k: polyloss.smooth_l1(p, t, beta=0.0, **k),
         smooth_l1_formula(0.0), lambda p, t: _sign(p - t), kinks=(0.0,)),
    # k32 = 8: for |r| < 1 log_cosh is log1p(e^2 / (2 (1 + e))) with e = expm1(|r|). The
    # relative error of e is amplified by (2 - e/(1+e)) <= 2 through e^2/(1+e), and four
    # more roundings (eps/2 each) follow. float32 expm1 is not correctly rounded everywhere:
    # measured on [0, 1], XLA's (jax) is off by up to 3.1 eps and TensorFlow's by 2.4 eps,
    # which gives up to ~2 * 3.1 + 2 = 8 eps (5.9 eps observed on jax); the far branch and
    # every other loss stay within 4 eps.
    Spec("log_cosh", polyloss.log_cosh, _log_cosh, lambda p, t: np.tanh(p - t), k32=8.0),
    Spec("mape", polyloss.mape, _mape(0.0), _mape_grad(0.0), domain="mape", kinks=(0.0,)),
    Spec("mape_eps0.5", lambda p, t, **k: polyloss.mape(p, t, epsilon=0.5, **k), _mape(0.5),
         _mape_grad(0.5), domain="mape_small", kinks=(0.0,)),
    Spec("msle", polyloss.msle, _msle(None), _msle_grad(None), domain="positive",
         terms=_msle_terms(None)),
    Spec("msle_eps0.2", lambda p, t, **k: polyloss.msle(p, t, epsilon=0.2, **k), _msle(0.2),
         _msle_grad(0.2), domain="real", terms=_msle_terms(0.2)),
    Spec("quantile", polyloss.quantile, _pinball(0.5), _pinball_grad(0.5), kinks=(0.0,)),
    Spec("quantile_q0.3", lambda p, t, **k: polyloss.quantile(p, t, q=0.3, **k), _pinball(0.3),
         _pinball_grad(0.3), kinks=(0.0,)),
]
SPEC = {s.name: s for s in SPECS}


def spec_params(specs=None) -> list:
    return [pytest.param(s, id=s.name) for s in (SPECS if specs is None else specs)]


# ---- inputs -------------------------------------------------------------------------------

def make_inputs(spec: Spec, shape: tuple, dtype: str, seed: int = 0) -> tuple[np.ndarray, ...]:
    """``(pred, target)`` made in NumPy float64 and cast to ``dtype`` in NumPy."""
    rng = np.random.default_rng(seed)
    if spec.domain == "positive":  # MSLE: log1p needs > -1
        p = rng.uniform(0.0, 3.0, size=shape)
        t = rng.uniform(0.0, 3.0, size=shape)
    elif spec.domain == "mape":  # targets kept away from 0
        t = rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.5, 2.0, size=shape)
        p = t + 1.5 * rng.standard_normal(size=shape)
    elif spec.domain == "mape_small":  # |target| on both sides of epsilon = 0.5
        t = rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.05, 2.0, size=shape)
        p = t + 1.5 * rng.standard_normal(size=shape)
    else:  # residuals on both sides of every threshold used (0.5, 1, 2.5)
        t = rng.standard_normal(size=shape)
        p = t + 1.6 * rng.standard_normal(size=shape)
    return p.astype(dtype), t.astype(dtype)


WEIGHT_SHAPES = {
    # mode -> weight shape for a loss of shape (N, ...)
    "full": lambda s: s,
    "per_sample": lambda s: s[:1],
    "broadcast": lambda s: (1,) * (len(s) - 1) + s[-1:],
}


def make_weight(mode: str | None, shape: tuple, dtype: str, seed: int = 1) -> np.ndarray | None:
    if mode is None:
        return None
    rng = np.random.default_rng(seed)
    return rng.uniform(0.5, 2.0, size=WEIGHT_SHAPES[mode](shape)).astype(dtype)


# ---- reductions, by hand --------------------------------------------------------------------

def hand_weight(w: np.ndarray | None, loss_shape: tuple) -> np.ndarray | None:
    """The weight as it multiplies the loss: a leading-prefix weight gets trailing axes."""
    if w is None:
        return None
    if w.shape != loss_shape and 0 < w.ndim < len(loss_shape) and w.shape == loss_shape[: w.ndim]:
        w = w.reshape(w.shape + (1,) * (len(loss_shape) - w.ndim))
    return w.astype(np.float64)


def hand_reduce(elem: np.ndarray, reduction: str, w: np.ndarray | None = None,
                normalizer: str = "count", post: Callable | None = None) -> np.ndarray:
    """none: w*L; sum: sum(w*L); mean: sum(w*L) / count, or / sum of the weights."""
    w = hand_weight(w, elem.shape)
    wl = elem if w is None else elem * w
    if reduction == "none":
        out = wl
    elif reduction == "sum":
        out = np.sum(wl)
    elif w is None or normalizer == "count":
        out = np.sum(wl) / wl.size if wl.size else np.float64(np.nan)
    else:
        out = np.sum(wl) / np.sum(np.broadcast_to(w, elem.shape))
    out = np.asarray(out, dtype=np.float64)
    return post(out) if post is not None else out


def hand_value(spec: Spec, p, t, reduction="mean", w=None, normalizer="count") -> np.ndarray:
    p64, t64 = np.asarray(p, np.float64), np.asarray(t, np.float64)
    return hand_reduce(spec.hand(p64, t64), reduction, w, normalizer, spec.post)


def hand_grad(spec: Spec, p, t, reduction="mean", w=None, normalizer="count") -> np.ndarray:
    """d sum(loss(p, t)) / d p, by the chain rule written out by hand."""
    p64, t64 = np.asarray(p, np.float64), np.asarray(t, np.float64)
    g = spec.dpred(p64, t64)
    wf = hand_weight(w, p64.shape)
    if wf is not None:
        g = g * wf
    if reduction == "mean":
        if wf is None or normalizer == "count":
            g = g / p64.size
        else:
            g = g / np.sum(np.broadcast_to(wf, p64.shape))
    g = np.broadcast_to(g, p64.shape).astype(np.float64)
    if spec.post is not None:  # RMSE: d sqrt(S + eps) = dS / (2 sqrt(S + eps))
        inner = hand_reduce(spec.hand(p64, t64), reduction, w, normalizer)
        g = g / (2.0 * spec.post(inner))
    return g


def oracle(spec: Spec, p, t, reduction="mean", w=None, normalizer="count", **extra) -> np.ndarray:
    """polyloss itself on NumPy float64 arrays made from the same (cast) inputs."""
    kw = {"reduction": reduction, "normalizer": normalizer, **extra}
    if w is not None:
        kw["sample_weight"] = np.asarray(w, np.float64)
    with np.errstate(all="ignore"):  # overflow to inf / 0-by-0 NaN are the expected values here
        out = spec.call(np.asarray(p, np.float64), np.asarray(t, np.float64), **kw)
    return np.asarray(out, dtype=np.float64)


# ---- tolerances -------------------------------------------------------------------------------

def rtol(spec: Spec, dtype: str, reduction: str, n: int) -> float:
    """float64: 1e-12. float32: k eps elementwise and k eps max(1, log2 n) for a reduction
    of n elements (k = 4, or spec.k32, pairwise/tree summation grows like log2 n).
    float16: 2e-3 (results are float32 rounded once to float16, eps16 / 2 ~ 4.9e-4)."""
    if dtype == "float64":
        return 1e-12
    if dtype == "float16":
        return 2e-3
    k = spec.k32
    return k * EPS["float32"] * (1.0 if reduction == "none" else max(1.0, math.log2(max(n, 1))))


def tolerance(spec: Spec, dtype: str, p, t, reduction: str, w=None, normalizer="count"):
    """Absolute tolerance, elementwise for "none": rtol times the (reduced) magnitude of the
    loss, or of its intermediate terms where the formula cancels (MSLE)."""
    want = np.abs(oracle(spec, p, t, reduction, w, normalizer))
    tol = rtol(spec, dtype, reduction, np.size(p)) * want
    if spec.terms is not None and spec.post is None:
        p64, t64 = np.asarray(p, np.float64), np.asarray(t, np.float64)
        wabs = None if w is None else np.abs(np.asarray(w, np.float64))
        magnitude = np.abs(hand_reduce(spec.terms(p64, t64), reduction, wabs, normalizer))
        # the cancellation happens in the compute dtype (float32 for float16 inputs)
        cdt = COMPUTE[dtype]
        k = rtol(spec, cdt, reduction, np.size(p)) if cdt == "float32" else 4 * EPS["float64"]
        tol = np.maximum(tol, k * magnitude)
    return tol + (1e-300 if dtype == "float64" else 0.0)


def assert_close(got, want, tol, what: str = "") -> None:
    """``|got - want| <= tol`` elementwise; NaN must match NaN and inf must match inf exactly."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != expected {want.shape}"
    same_nonfinite = (np.isnan(got) & np.isnan(want)) | (np.isinf(want) & (got == want))
    finite = np.isfinite(want)
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf where want is not finite
        err = np.where(finite, np.abs(got - want), 0.0)
    bad = ~same_nonfinite & (~finite | ~(err <= np.broadcast_to(tol, err.shape)))
    if np.any(bad):
        idx = np.argwhere(bad)[:5]
        detail = "; ".join(
            f"at {tuple(i)}: got {got[tuple(i)]!r}, expected {want[tuple(i)]!r}, "
            f"tol {np.broadcast_to(tol, err.shape)[tuple(i)]:.3g}"
            for i in idx
        ) if got.ndim else f"got {got!r}, expected {want!r}, tol {float(np.max(tol)):.3g}"
        raise AssertionError(f"{what}: {int(np.sum(bad))} value(s) out of tolerance: {detail}")


def run(backend, spec: Spec, p, t, reduction="mean", w=None, normalizer="count", **extra):
    """Run ``spec`` on ``backend`` with NumPy inputs moved there; returns (raw out, NumPy out)."""
    kw = {"reduction": reduction, "normalizer": normalizer, **extra}
    if w is not None:
        kw["sample_weight"] = backend.asarray(w)
    out = spec.call(backend.asarray(p), backend.asarray(t), **kw)
    return out, backend.to_numpy(out)


def is_native(backend, out, like) -> bool:
    """``out`` is an array of the framework ``like`` (an input array) belongs to."""
    if backend.name == "numpy":
        # NumPy reductions give NumPy scalars (np.float64 etc.), its 0-d value type
        return isinstance(out, (np.ndarray, np.generic))
    return isinstance(out, type(like))


# ---- tests of the helpers themselves ------------------------------------------------------------

def test_hand_formulas_on_numbers_worked_out_by_hand():
    # The hand formulas above against values computed with pen and paper.
    p = np.array([3.0, -1.0, 0.5, 2.0])
    t = np.array([1.0, 1.0, 0.5, 2.5])  # r = p - t = [2, -2, 0, -0.5]
    np.testing.assert_array_equal(SPEC["mse"].hand(p, t), [4.0, 4.0, 0.0, 0.25])
    np.testing.assert_array_equal(SPEC["mae"].hand(p, t), [2.0, 2.0, 0.0, 0.5])
    # huber(delta=1): |r| = 2 -> 1 * (2 - 0.5) = 1.5; r = -0.5 -> 0.125
    np.testing.assert_array_equal(SPEC["huber"].hand(p, t), [1.5, 1.5, 0.0, 0.125])
    # huber(delta=2.5): all quadratic: r^2 / 2
    np.testing.assert_array_equal(SPEC["huber_d2.5"].hand(p, t), [2.0, 2.0, 0.0, 0.125])
    # smooth_l1(beta=0.5): |r| = 2 -> 2 - 0.25 = 1.75; |r| = 0.5 (at beta) -> 0.5 - 0.25
    np.testing.assert_array_equal(SPEC["smooth_l1_b0.5"].hand(p, t), [1.75, 1.75, 0.0, 0.25])
    np.testing.assert_array_equal(SPEC["smooth_l1_b0"].hand(p, t), [2.0, 2.0, 0.0, 0.5])
    # pinball q = 0.3, r = t - p = [-2, 2, 0, 0.5]: max(0.3 r, -0.7 r)
    np.testing.assert_allclose(SPEC["quantile_q0.3"].hand(p, t), [1.4, 0.6, 0.0, 0.15],
                               rtol=1e-15)
    # mape: 100 |t - p| / |t| = [200, 200, 0, 20]
    np.testing.assert_allclose(SPEC["mape"].hand(p, t), [200.0, 200.0, 0.0, 20.0], rtol=1e-15)
    # log cosh 2 = log((e^2 + e^-2) / 2)
    np.testing.assert_allclose(SPEC["log_cosh"].hand(p, t)[:1],
                               [math.log((math.e**2 + math.e**-2) / 2)], rtol=1e-15)
    # msle: (log 4 - log 2)^2 = (log 2)^2 for p = 3, t = 1
    np.testing.assert_allclose(SPEC["msle"].hand(p[:1], t[:1]), [math.log(2) ** 2], rtol=1e-15)


def test_hand_reduce_weighted_means_worked_by_hand():
    elem = np.array([1.0, 4.0, 9.0])  # squared residuals 1, 2, 3
    w = np.array([1.0, 1.0, 2.0])
    assert hand_reduce(elem, "sum", w) == 23.0  # 1 + 4 + 18
    assert hand_reduce(elem, "mean", w, "count") == 23.0 / 3
    assert hand_reduce(elem, "mean", w, "sum_of_weights") == 23.0 / 4
    e2 = np.arange(6.0).reshape(3, 2)
    # per-sample weights (3,) multiply whole rows
    np.testing.assert_array_equal(hand_reduce(e2, "none", w), [[0, 1], [2, 3], [8, 10]])
    # broadcast weights (1, 2) multiply whole columns; sum of weights counts each row
    wb = np.array([[1.0, 3.0]])
    assert hand_reduce(e2, "mean", wb, "sum_of_weights") == (0 + 2 + 4 + 3 * (1 + 3 + 5)) / 12.0
    assert np.isnan(hand_reduce(np.zeros((0, 2)), "mean"))


def test_inputs_cover_both_sides_of_every_threshold():
    # otherwise the parity matrix could pass without ever reaching a branch
    p, t = make_inputs(SPEC["huber"], (6, 4), "float64")
    a = np.abs(p - t)
    for thr in (0.5, 1.0, 2.5):
        assert np.any(a < thr) and np.any(a > thr), thr
    p, t = make_inputs(SPEC["mape_eps0.5"], (6, 4), "float64")
    assert np.any(np.abs(t) < 0.5) and np.any(np.abs(t) > 0.5)
    p, t = make_inputs(SPEC["msle_eps0.2"], (6, 4), "float64")
    assert np.any(p < 0.2) and np.any(p > 0.2) and np.any(t < 0.2)
    p, t = make_inputs(SPEC["log_cosh"], (6, 4), "float64")
    assert np.any(np.abs(p - t) < 1) and np.any(np.abs(p - t) > 1)

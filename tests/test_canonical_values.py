"""The canonical losses' values: the parity matrix and the numbers it is anchored to.

Every canonical loss x every installed backend x dtype (float32, float64; float16 on NumPy,
torch and JAX) x reduction x sample_weight (none, full shape, per-sample ``(N,)`` prefix,
broadcastable ``(1, D)``) x normalizer is compared with the ORACLE: the same polyloss
function on NumPy float64 arrays made from the same cast inputs. The oracle itself is
checked against hand-written NumPy formulas (``test_canonical_common.SPECS``: the expected
values there are computed by hand from the formulas), and a few results against numbers
worked out on paper (the seeds' examples). Inputs are always made in NumPy, cast to the
test dtype in NumPy and moved with ``backend.asarray``, so every backend sees the same bits.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import INSTALLED, require
from test_canonical_common import (
    EPS,
    SPEC,
    SPECS,
    Spec,
    assert_close,
    backend_dtype_params,
    hand_reduce,
    hand_value,
    huber_formula,
    is_native,
    make_inputs,
    make_weight,
    oracle,
    rtol,
    run,
    spec_params,
    tolerance,
)

import polyloss

SHAPE = (6, 4)

# (reduction, weight mode, normalizer); the normalizer only matters for a weighted mean
CASES = (
    [("none", w, "count") for w in (None, "full", "per_sample", "broadcast")]
    + [("sum", w, "count") for w in (None, "full", "per_sample", "broadcast")]
    + [("mean", None, "count"), ("mean", None, "sum_of_weights")]
    + [("mean", w, n) for w in ("full", "per_sample", "broadcast")
       for n in ("count", "sum_of_weights")]
)
CASE_PARAMS = [pytest.param(*c, id=f"{c[0]}-w={c[1]}-{c[2]}") for c in CASES]


# ---- the oracle against the hand formulas ---------------------------------------------------

def _hand_atol(spec: Spec, reduction, w, normalizer, shape):
    # log(cosh(r)) written from the definition is only good to ~eps absolutely near r = 0
    # (cosh rounds to 1 + r^2/2), so its comparison gets a few eps of absolute slack.
    if spec.name != "log_cosh":
        return 1e-300
    ones = np.ones(shape)
    return 8 * EPS["float64"] * np.abs(hand_reduce(ones, reduction, w, normalizer))


@pytest.mark.parametrize("src_dtype", ["float64", "float32", "float16"])
@pytest.mark.parametrize(("reduction", "wmode", "normalizer"), CASE_PARAMS)
@pytest.mark.parametrize("spec", spec_params())
def test_oracle_matches_hand_formula(spec, reduction, wmode, normalizer, src_dtype):
    p, t = make_inputs(spec, SHAPE, src_dtype)
    w = make_weight(wmode, SHAPE, src_dtype)
    got = oracle(spec, p, t, reduction, w, normalizer)
    want = hand_value(spec, p, t, reduction, w, normalizer)
    tol = 1e-12 * np.abs(want) + _hand_atol(spec, reduction, w, normalizer, SHAPE)
    assert_close(got, want, tol, f"oracle {spec.name} vs hand formula")


# ---- the parity matrix ---------------------------------------------------------------------------

@pytest.mark.parametrize(("reduction", "wmode", "normalizer"), CASE_PARAMS)
@pytest.mark.parametrize(("backend", "dtype"), backend_dtype_params())
@pytest.mark.parametrize("spec", spec_params())
def test_matches_oracle(spec, backend, dtype, reduction, wmode, normalizer):
    backend.setup()
    p, t = make_inputs(spec, SHAPE, dtype)
    w = make_weight(wmode, SHAPE, dtype)
    out, got = run(backend, spec, p, t, reduction, w, normalizer)
    assert is_native(backend, out, backend.asarray(p)), (
        f"{backend.name} in, {type(out).__module__}.{type(out).__qualname__} out")
    assert got.dtype == np.dtype(dtype), f"dtype {got.dtype}, expected {dtype}"
    assert got.shape == (SHAPE if reduction == "none" else ())
    want = oracle(spec, p, t, reduction, w, normalizer)
    tol = tolerance(spec, dtype, p, t, reduction, w, normalizer)
    assert_close(got, want, tol, f"{spec.name} on {backend.name} {dtype}")


def test_tolerance_is_the_briefs_formula():
    # float32: 4 eps elementwise, 4 eps log2(n) reduced; float64: 1e-12; float16: 2e-3
    e = EPS["float32"]
    assert rtol(SPEC["mse"], "float32", "none", 24) == 4 * e
    assert rtol(SPEC["mse"], "float32", "mean", 24) == 4 * e * math.log2(24)
    assert rtol(SPEC["mse"], "float32", "sum", 1) == 4 * e
    assert rtol(SPEC["mse"], "float64", "sum", 24) == 1e-12
    assert rtol(SPEC["mse"], "float16", "none", 24) == 2e-3


def test_parity_check_detects_a_one_ulp_shift_in_float64(backend):
    # the matrix's float64 tolerance is tight enough to see a wrong rounding of the mean
    spec = SPEC["mse"]
    p, t = make_inputs(spec, SHAPE, "float64")
    want = oracle(spec, p, t)
    _, got = run(backend, spec, p, t)
    tol = tolerance(spec, "float64", p, t, "mean")
    assert_close(got, want, tol)
    wrong = want * (1 + 1e-11)
    with pytest.raises(AssertionError):
        assert_close(wrong, want, tol)


# ---- worked examples (the seeds) ------------------------------------------------------------------

@pytest.mark.parametrize(("backend", "dtype"), backend_dtype_params())
def test_seed000_single_prediction(backend, dtype):
    # seed 000, by hand: actual 100, predicted 110 -> |r| = 10: MAE 10, MSE 100,
    # Huber(delta=5) = 5 * (10 - 5/2) = 37.5. All exact in every float format.
    pred = backend.asarray(np.full((1,), 110.0).astype(dtype))
    target = backend.asarray(np.full((1,), 100.0).astype(dtype))
    for name, fn, expected in [
        ("mae", polyloss.mae, 10.0),
        ("l1", polyloss.l1, 10.0),
        ("mse", polyloss.mse, 100.0),
        ("huber", lambda p, t, **k: polyloss.huber(p, t, delta=5.0, **k), 37.5),
        ("rmse", polyloss.rmse, 10.0),
    ]:
        for reduction in ("mean", "sum"):
            got = backend.to_numpy(fn(pred, target, reduction=reduction))
            assert got.dtype == np.dtype(dtype)
            assert float(got) == expected, (name, reduction, float(got))
        got = backend.to_numpy(fn(pred, target, reduction="none"))
        assert got.shape == (1,) and float(got[0]) == expected, (name, got)


def _seed002():
    require("torch")
    import torch

    with torch.random.fork_rng():  # leaves the global generator as it was
        torch.manual_seed(42)
        yhat = torch.randn(3, 5)
        y = torch.randn(3, 5)
    return yhat.numpy().copy(), y.numpy().copy()


@pytest.mark.parametrize("upcast", [False, True], ids=["float32", "float64"])
def test_seed002_printed_numbers(backend, upcast):
    # seed 002, printed by torch to 4 decimals: MSE 1.0192, L1 0.8502,
    # RMSE = sqrt(MSE + 1e-7) 1.0096. The torch values come in float32; polyloss must give
    # the same 4 decimals on every backend, from the float32 bits and from them upcast.
    yhat, y = _seed002()
    if upcast:
        yhat, y = yhat.astype(np.float64), y.astype(np.float64)
    p, t = backend.asarray(yhat), backend.asarray(y)
    for name, value, expected in [
        ("mse", polyloss.mse(p, t), 1.0192),
        ("l1", polyloss.l1(p, t), 0.8502),
        ("rmse", polyloss.rmse(p, t, epsilon=1e-7), 1.0096),
    ]:
        got = float(backend.to_numpy(value))
        assert abs(got - expected) <= 5e-5, (name, got)
    # and the printed values are consistent with each other: rmse^2 - 1e-7 == mse
    mse = float(backend.to_numpy(polyloss.mse(p, t)))
    rmse = float(backend.to_numpy(polyloss.rmse(p, t, epsilon=1e-7)))
    assert rmse**2 - 1e-7 == pytest.approx(mse, rel=1e-6)


def test_l1_is_mae():
    assert polyloss.l1 is polyloss.mae


# ---- edge inputs -------------------------------------------------------------------------------------

# residuals 0, +-0.5 (the threshold used below), +-1e20, +-1e-20; p - t is exact for each
_P = np.array([1.0, 1.5, 1.0, 1e20, -1e20, 1e-20, -1e-20])
_T = np.array([1.0, 1.0, 1.5, 0.0, 0.0, 0.0, 0.0])
# MAPE needs nonzero targets: |r|/|t| = 0, 0.25, 0.25, ~1e20, ~1e20, 1 (r = 1e-20), 1
_P_MAPE = np.array([1.0, 2.5, 1.5, 1e20, -1e20, 2e-20, 0.0])
_T_MAPE = np.array([1.0, 2.0, 2.0, 1.0, 1.0, 1e-20, 1e-20])
# MSLE needs inputs > -1
_P_MSLE = np.array([1.0, 1.5, 1.0, 1e20, 0.0, 1e-20, 0.0])
_T_MSLE = np.array([1.0, 1.0, 1.5, 0.0, 1e20, 0.0, 1e-20])
_LOG2 = math.log(2.0)


def _edge_inputs(name):
    if name.startswith("mape"):
        return _P_MAPE, _T_MAPE
    if name.startswith("msle"):
        return _P_MSLE, _T_MSLE
    return _P, _T


def _edge_expected(spec, p, t):
    """The exact elementwise values, by hand in float64 (asymptotic forms where the textbook
    formula breaks down: log cosh r = r^2/2 for tiny r and |r| - log 2 for huge r)."""
    if spec.name == "log_cosh":
        r = p - t
        a = np.abs(r)
        with np.errstate(over="ignore"):
            mid = np.log(np.cosh(np.where(a < 20, r, 0.0)))
        return np.where(a < 1e-8, 0.5 * r * r, np.where(a > 20, a - _LOG2, mid))
    return hand_value(spec, p, t, "none")


# huber with the threshold exactly at the +-0.5 residuals (smooth_l1_b0.5 already is)
_EDGE_SPECS = [s for s in SPECS if s.name != "rmse_eps1e-7"] + [
    Spec("huber_d0.5", lambda p, t, **k: polyloss.huber(p, t, delta=0.5, **k),
         huber_formula(0.5), lambda p, t: np.clip(p - t, -0.5, 0.5)),
]


def test_threshold_values_by_hand(backend):
    # |r| == delta == 0.5: huber = delta^2 / 2 = 0.125 (both branches agree);
    # |r| == beta == 0.5: smooth_l1 = beta / 2 = 0.25; both exactly
    for dtype in backend.dtypes:
        p = backend.asarray(np.array([1.5, 1.0, 3.0]).astype(dtype))
        t = backend.asarray(np.array([1.0, 1.5, 2.0]).astype(dtype))
        h = backend.to_numpy(polyloss.huber(p, t, delta=0.5, reduction="none"))
        np.testing.assert_array_equal(h, np.array([0.125, 0.125, 0.375]).astype(dtype))
        s = backend.to_numpy(polyloss.smooth_l1(p, t, beta=0.5, reduction="none"))
        np.testing.assert_array_equal(s, np.array([0.25, 0.25, 0.75]).astype(dtype))
        h1 = backend.to_numpy(polyloss.huber(p, t, reduction="none"))  # |r| = 1 = delta
        np.testing.assert_array_equal(h1, np.array([0.125, 0.125, 0.5]).astype(dtype))
        s1 = backend.to_numpy(polyloss.smooth_l1(p, t, reduction="none"))
        np.testing.assert_array_equal(s1, np.array([0.125, 0.125, 0.5]).astype(dtype))


@pytest.mark.parametrize("spec", spec_params(_EDGE_SPECS))
def test_edge_residuals_float64_exact(backend, spec):
    p, t = _edge_inputs(spec.name)
    want = _edge_expected(spec, p, t)
    if spec.post is not None:  # RMSE elementwise: sqrt(r^2) = |r|
        want = np.abs(p - t)
    assert np.all(np.isfinite(want))
    _, got = run(backend, spec, p, t, "none")
    # exact up to the last roundings of each formula (MSLE: of its cancelling terms)
    magnitude = np.abs(want) if spec.terms is None else spec.terms(p, t)
    tol = 4 * EPS["float64"] * magnitude + 1e-300
    assert_close(got, want, tol, f"{spec.name} edge values on {backend.name}")
    assert_close(oracle(spec, p, t, "none"), want, tol, "oracle")
    for reduction in ("sum", "mean"):
        _, got = run(backend, spec, p, t, reduction)
        wr = hand_reduce(want, reduction, post=None)
        if spec.post is not None:
            wr = np.sqrt(hand_reduce((p - t) ** 2, reduction))
        mr = np.abs(wr) if spec.terms is None else hand_reduce(magnitude, reduction)
        assert_close(got, wr, 4 * EPS["float64"] * math.log2(p.size) * mr,
                     f"{spec.name} {reduction}")


_FLOAT32_EDGE_SPECS = [s for s in _EDGE_SPECS if s.post is None]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy/Dask overflow and 0/0
@pytest.mark.parametrize("spec", spec_params(_FLOAT32_EDGE_SPECS))
def test_edge_residuals_float32(backend, spec):
    # expected: the exact value (hand formula in float64 on the float32-cast inputs) rounded to
    # float32, i.e. inf where float32 overflows (mse of 1e20), as the oracle says.
    p, t = (a.astype(np.float32) for a in _edge_inputs(spec.name))
    with np.errstate(over="ignore"):
        want = _edge_expected(spec, p.astype(np.float64), t.astype(np.float64))
        want32 = want.astype(np.float32)
        oracle32 = oracle(spec, p, t, "none").astype(np.float32)
    np.testing.assert_array_equal(oracle32, want32)  # the oracle agrees
    out, got = run(backend, spec, p, t, "none")
    assert got.dtype == np.float32
    # Results below float32's normal range (1e-20^2 = 1e-40) are subnormal: XLA (jax) and
    # TensorFlow's CPU kernels flush subnormals to zero, the others keep them with fewer
    # significant bits, so those compare with an absolute tolerance of the smallest normal.
    tol = spec.k32 * EPS["float32"] * np.abs(want32) + float(np.finfo(np.float32).tiny)
    assert_close(got, want32, tol, f"{spec.name} float32 edges on {backend.name}")


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy/Dask overflow and 0/0
@pytest.mark.parametrize("reduction", ["none", "mean"])
def test_rmse_float32_huge_and_tiny_residuals(backend, reduction):
    t = np.zeros(3, dtype=np.float32)
    for value in (1e20, 1e-20, 1e-30):
        p = np.full(3, value, dtype=np.float32)
        _, got = run(backend, SPEC["rmse"], p, t, reduction)
        want = np.float32(value)
        assert_close(got, np.broadcast_to(want, got.shape), 4 * EPS["float32"] * want,
                     f"rmse({value}) float32 on {backend.name}")


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy/Dask overflow and 0/0
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_overflow_reduces_to_inf(backend, reduction, dtype):
    # mse of a 1e20 (float32) or 1e200 (float64) residual overflows: the oracle in float64
    # gives 1e40 (inf in float32), and inf by hand for 1e400. The reduced loss must be inf,
    # not NaN, wherever the inf sits in the batch (mx.np.sum's Kahan summation gave NaN here).
    big = 1e20 if dtype == "float32" else 1e200
    p = np.array([big, 1.0, 2.0, 3.0]).astype(dtype)
    t = np.zeros(4, dtype=dtype)
    with np.errstate(over="ignore"):
        want = oracle(SPEC["mse"], p, t, reduction).astype(dtype)
    assert want == np.inf
    _, got = run(backend, SPEC["mse"], p, t, reduction)
    assert got == np.inf, got


@pytest.mark.parametrize("spec", spec_params())
def test_batch_of_one(backend, spec):
    # (1, 4) through every reduction with and without a per-sample weight; (1,) reduced
    for shape, reductions in [((1, 4), ("none", "sum", "mean")), ((1,), ("mean",))]:
        for dtype in backend.dtypes:
            p, t = make_inputs(spec, shape, dtype, seed=3)
            w = make_weight("per_sample", shape, dtype)
            for reduction in reductions:
                for weight in (None, w):
                    _, got = run(backend, spec, p, t, reduction, weight)
                    want = oracle(spec, p, t, reduction, weight)
                    assert got.shape == (shape if reduction == "none" else ())
                    assert_close(got, want, tolerance(spec, dtype, p, t, reduction, weight),
                                 f"{spec.name} {shape} {dtype} {reduction}")
                    hand = hand_value(spec, p, t, reduction, weight)
                    assert_close(want, hand, 1e-12 * np.abs(hand) + 1e-300, "oracle vs hand")


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy/Dask overflow and 0/0
@pytest.mark.parametrize("spec", spec_params())
def test_empty_batch(backend, spec):
    # mean of nothing is NaN (0/0), sum of nothing is 0, none keeps the empty shape
    cases = [("none", "count"), ("sum", "count"), ("mean", "count"), ("mean", "sum_of_weights")]
    for dtype in backend.dtypes:
        for shape, weighted in [((0, 3), False), ((0, 3), True), ((0,), False)]:
            p, t = make_inputs(spec, shape, dtype)
            weight = make_weight("per_sample", shape, dtype) if weighted else None
            for reduction, normalizer in cases:
                out, got = run(backend, spec, p, t, reduction, weight, normalizer)
                what = (dtype, shape, weighted, reduction, normalizer, got)
                assert is_native(backend, out, backend.asarray(p)), what
                assert got.dtype == np.dtype(dtype), what
                if reduction == "none":
                    assert got.shape == shape, what
                elif reduction == "sum":
                    want = 0.0 if spec.post is None else spec.post(0.0)  # rmse: sqrt(eps)
                    assert got.shape == () and got == np.asarray(want, dtype), what
                else:
                    assert got.shape == () and np.isnan(got), what


# weight shape for a (2, 3, 4) loss -> the (reduction, normalizer) it is checked with
_CASES_3D = [
    (None, "none", "count"), (None, "mean", "count"), ((2, 3, 4), "sum", "count"),
    ((2,), "mean", "sum_of_weights"), ((2,), "none", "count"), ((2, 3), "mean", "count"),
    ((1, 1, 4), "mean", "sum_of_weights"), ((3, 4), "sum", "count"),
    ((1, 3, 1), "mean", "sum_of_weights"),
]


@pytest.mark.parametrize("spec", spec_params())
def test_three_dimensional_inputs(backend, spec):
    # float64 (float32 3-D reductions are the same code as the 2-D matrix's)
    shape, dtype = (2, 3, 4), "float64"
    p, t = make_inputs(spec, shape, dtype, seed=5)
    rng = np.random.default_rng(6)
    for wshape, reduction, normalizer in _CASES_3D:
        w = None if wshape is None else rng.uniform(0.5, 2.0, wshape).astype(dtype)
        _, got = run(backend, spec, p, t, reduction, w, normalizer)
        want = oracle(spec, p, t, reduction, w, normalizer)
        what = f"{spec.name} 3-D w={wshape} {reduction} {normalizer}"
        assert got.shape == (shape if reduction == "none" else ()), what
        assert_close(got, want, tolerance(spec, dtype, p, t, reduction, w, normalizer), what)
        hand = hand_value(spec, p, t, reduction, w, normalizer)
        atol = _hand_atol(spec, reduction, w, normalizer, shape)
        assert_close(want, hand, 1e-12 * np.abs(hand) + atol, "oracle vs hand " + what)


def test_three_dimensional_prefix_weight_by_hand():
    # (2,) weights multiply whole (3, 4) blocks; (2, 3) weights whole rows of 4
    p = np.zeros((2, 3, 4))
    t = np.ones((2, 3, 4))  # every squared residual is 1
    w = np.array([2.0, 5.0])
    assert polyloss.mse(p, t, sample_weight=w, reduction="sum") == 12 * 2 + 12 * 5
    assert polyloss.mse(p, t, sample_weight=w, normalizer="sum_of_weights") == 1.0
    assert polyloss.mse(p, t, sample_weight=w) == (12 * 2 + 12 * 5) / 24
    w2 = np.arange(6.0).reshape(2, 3)
    got = polyloss.mse(p, t, sample_weight=w2, reduction="none")
    np.testing.assert_array_equal(got, np.repeat(w2[:, :, None], 4, axis=2))


# ---- low precision --------------------------------------------------------------------------------

_LOW = [b for b in INSTALLED if b.name in ("torch", "jax")]


@pytest.mark.parametrize("backend_name", [b.name for b in _LOW] or ["torch"])
@pytest.mark.parametrize("spec", spec_params([SPEC[n] for n in ("mse", "huber", "log_cosh",
                                                                   "quantile_q0.3")]))
def test_bfloat16_returns_bfloat16(backend_name, spec):
    # bfloat16 is computed in float32 and rounded once at the end: within one bfloat16
    # rounding (eps/2 = 2^-8) of the float64 oracle on the same bfloat16 values, plus the
    # float32 computation's error (negligible next to it).
    b = require(backend_name)
    rng = np.random.default_rng(7)
    p64, t64 = rng.standard_normal(SHAPE), rng.standard_normal(SHAPE)
    if backend_name == "torch":
        import torch

        p = torch.from_numpy(p64).to(torch.bfloat16)
        t = torch.from_numpy(t64).to(torch.bfloat16)
        to64 = lambda x: x.to(torch.float64).numpy()  # noqa: E731
        bf16 = torch.bfloat16
    else:
        import jax.numpy as jnp

        p = jnp.asarray(p64, dtype=jnp.bfloat16)
        t = jnp.asarray(t64, dtype=jnp.bfloat16)
        to64 = lambda x: np.asarray(x.astype(jnp.float64))  # noqa: E731
        bf16 = jnp.bfloat16
    for reduction in ("none", "sum", "mean"):
        out = spec.call(p, t, reduction=reduction)
        assert out.dtype == bf16
        want = oracle(spec, to64(p), to64(t), reduction)
        assert_close(to64(out), want, 2.0**-8 * np.abs(want) + 1e-30, f"{b.name} bfloat16")


@pytest.mark.parametrize("normalizer", [
    "count",
    "sum_of_weights",
])
def test_empty_mean_is_nan_without_warnings_on_numpy(normalizer):
    import warnings

    p = np.zeros((0, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = polyloss.mse(p, p, sample_weight=np.ones(0), normalizer=normalizer)
    assert np.isnan(got)


# ---- array types and dtypes at the boundary ----------------------------------------------------------

@pytest.mark.parametrize("spec", spec_params())
def test_mxnet_ndarray_in_ndarray_out(spec):
    # the classic mx.nd.NDArray (what Gluon code passes) comes back as mx.nd.NDArray
    require("mxnet")
    import mxnet as mx

    for dtype in ("float64", "float32"):
        p, t = make_inputs(spec, SHAPE, dtype, seed=8)
        w = make_weight("per_sample", SHAPE, dtype)
        for reduction, weighted, normalizer in [("none", False, "count"), ("sum", True, "count"),
                                                ("mean", False, "count"),
                                                ("mean", True, "sum_of_weights")]:
            kw = {"sample_weight": mx.nd.array(w, dtype=dtype)} if weighted else {}
            out = spec.call(mx.nd.array(p, dtype=dtype), mx.nd.array(t, dtype=dtype),
                            reduction=reduction, normalizer=normalizer, **kw)
            assert type(out) is mx.nd.NDArray, type(out)
            got = out.asnumpy()
            assert got.dtype == np.dtype(dtype)
            ww = w if weighted else None
            want = oracle(spec, p, t, reduction, ww, normalizer)
            assert_close(got.reshape(want.shape), want,
                         tolerance(spec, dtype, p, t, reduction, ww, normalizer),
                         f"{spec.name} NDArray {dtype} {reduction}")


def _as_0d(backend, value):
    # polyloss.parity.backends' torch conversion goes through np.ascontiguousarray, which
    # turns a 0-d array into shape (1,), so 0-d torch tensors are made directly here
    if backend.name == "torch":
        import torch

        return torch.tensor(value, dtype=torch.float64)
    return backend.asarray(np.asarray(value, dtype=np.float64))


def test_zero_dimensional_inputs(backend):
    p, t = _as_0d(backend, 3.0), _as_0d(backend, 1.0)
    assert tuple(p.shape) == ()
    for fn, want in [(polyloss.mse, 4.0), (polyloss.mae, 2.0), (polyloss.huber, 1.5),
                     (polyloss.rmse, 2.0), (polyloss.quantile, 1.0)]:
        for reduction in ("none", "sum", "mean"):
            got = backend.to_numpy(fn(p, t, reduction=reduction))
            assert got.shape == () and got == want, (fn.__name__, reduction, got)


def test_mixed_float32_float64_promotes_to_float64(backend):
    p32, t32 = make_inputs(SPEC["huber"], SHAPE, "float32", seed=9)
    p64, t64 = p32.astype(np.float64), t32.astype(np.float64)
    for p, t in [(p32, t64), (p64, t32)]:
        got = backend.to_numpy(polyloss.huber(backend.asarray(p), backend.asarray(t)))
        assert got.dtype == np.float64
        assert_close(got, oracle(SPEC["huber"], p64, t64),
                     tolerance(SPEC["huber"], "float64", p64, t64, "mean"), "mixed precision")

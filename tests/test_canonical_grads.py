"""Gradients of the canonical losses with respect to the prediction.

On every autograd backend (torch, JAX, TensorFlow, MXNet; float64 and float32) the gradient
of ``sum(loss(pred, target))`` equals (a) the analytic gradient written by hand in NumPy
(``test_canonical_common.Spec.dpred`` and the chain rule in ``hand_grad``), which is itself
checked against (b) central finite differences of the NumPy float64 loss, and (c) the other
backends' gradients, kinks included: |r| at r = 0 has gradient 0 everywhere, Huber at
|r| = delta gives +-delta/N, smooth L1 at |r| = beta +-1/N, the pinball loss at r = 0 -q/N.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import AUTOGRAD, require
from test_canonical_common import (
    EPS,
    SPEC,
    SPECS,
    assert_close,
    hand_grad,
    make_inputs,
    make_weight,
    oracle,
    spec_params,
    tolerance,
)

import polyloss

SHAPE = (6, 4)
GRAD_CASES = [
    ("mean", None, "count"), ("sum", None, "count"), ("none", None, "count"),
    ("mean", "full", "count"), ("mean", "per_sample", "sum_of_weights"),
    ("none", "broadcast", "count"),
]


def autograd_params(dtypes=("float64", "float32")):
    return [pytest.param(b, dt, id=f"{b.name}-{dt}") for b in AUTOGRAD for dt in dtypes]


def _fn(spec, reduction, normalizer, weighted):
    def fn(p, t, *w):
        kw = {"sample_weight": w[0]} if weighted else {}
        return spec.call(p, t, reduction=reduction, normalizer=normalizer, **kw)

    return fn


def grad_rtol(dtype: str) -> float:
    # float64: the brief's 1e-12. float32: 8 eps. The backward pass of the longest chain
    # (log_cosh's near-zero branch: log1p, a quotient, expm1) rounds about six times, on top
    # of the forward values it reuses; measured worst case 2.7 eps elementwise.
    return 1e-12 if dtype == "float64" else 8 * EPS["float32"]


def _msle_cancel_scale(spec, p, t, reduction, w, normalizer):
    """MSLE's gradient 2 (log1p p - log1p t) / (1 + p) inherits the cancellation of the
    difference: its error is a few eps of 2 (|log1p p| + |log1p t|) / (1 + p), weighted and
    normalised like the gradient itself."""
    if not spec.name.startswith("msle"):
        return 0.0
    eps = 0.2 if spec.name == "msle_eps0.2" else None

    def dterms(p, t):
        pc, tc = (p, t) if eps is None else (np.maximum(p, eps), np.maximum(t, eps))
        return 2.0 * (np.abs(np.log1p(pc)) + np.abs(np.log1p(tc))) / (1.0 + pc)

    from dataclasses import replace

    return np.abs(hand_grad(replace(spec, dpred=dterms), p, t, reduction, w, normalizer))


def grad_tol(spec, dtype, p, t, reduction, w=None, normalizer="count"):
    g = np.abs(hand_grad(spec, p, t, reduction, w, normalizer))
    return grad_rtol(dtype) * (g + _msle_cancel_scale(spec, p, t, reduction, w, normalizer))


# ---- (a) against the hand-written gradient, every autograd backend ---------------------------------

@pytest.mark.parametrize(("reduction", "wmode", "normalizer"),
                         [pytest.param(*c, id=f"{c[0]}-w={c[1]}-{c[2]}") for c in GRAD_CASES])
@pytest.mark.parametrize(("backend", "dtype"), autograd_params())
@pytest.mark.parametrize("spec", spec_params())
def test_grad_matches_hand_formula(spec, backend, dtype, reduction, wmode, normalizer):
    backend.setup()
    p, t = make_inputs(spec, SHAPE, dtype)
    w = make_weight(wmode, SHAPE, dtype)
    arrays = [p, t] + ([w] if w is not None else [])
    value, g = backend.value_and_grad(_fn(spec, reduction, normalizer, w is not None), arrays, 0)
    assert g.dtype == np.dtype(dtype) and g.shape == SHAPE
    assert_close(value, oracle(spec, p, t, reduction, w, normalizer),
                 tolerance(spec, dtype, p, t, reduction, w, normalizer), "value")
    want = hand_grad(spec, p, t, reduction, w, normalizer)
    assert_close(g, want, grad_tol(spec, dtype, p, t, reduction, w, normalizer),
                 f"d{spec.name}/dpred on {backend.name} {dtype}")


@pytest.mark.parametrize(("backend", "dtype"), autograd_params())
@pytest.mark.parametrize("name", ["mse", "mae", "huber", "smooth_l1", "log_cosh", "quantile_q0.3"])
def test_grad_wrt_target_is_minus_grad_wrt_pred(name, backend, dtype):
    # these losses depend on pred - target only
    spec = SPEC[name]
    p, t = make_inputs(spec, SHAPE, dtype, seed=11)
    _, gt = backend.value_and_grad(_fn(spec, "mean", "count", False), [p, t], 1)
    assert_close(gt, -hand_grad(spec, p, t), grad_tol(spec, dtype, p, t, "mean"), "d/dtarget")


# ---- (b) the hand-written gradient against finite differences ------------------------------------

def _central_differences(spec, p, t, reduction, w, normalizer):
    """d sum(loss) / d p_i by central differences on NumPy float64."""
    def total(pp):
        return float(np.sum(oracle(spec, pp, t, reduction, w, normalizer)))

    g = np.zeros_like(p)
    for i in np.ndindex(p.shape):
        h = 1e-6 * max(1.0, abs(p[i]))
        up, down = p.copy(), p.copy()
        up[i] += h
        down[i] -= h
        g[i] = (total(up) - total(down)) / (up[i] - down[i])
    return g


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize(("reduction", "wmode", "normalizer"),
                         [pytest.param(*c, id=f"{c[0]}-w={c[1]}-{c[2]}") for c in GRAD_CASES])
@pytest.mark.parametrize("spec", spec_params())
def test_hand_gradient_matches_finite_differences(spec, reduction, wmode, normalizer, seed):
    shape = (3, 2)
    p, t = make_inputs(spec, shape, "float64", seed=100 + seed)
    w = make_weight(wmode, shape, "float64")
    # the points are away from every kink and clip by much more than the step
    r = np.abs(p - t)
    for k in (0.0, 0.5, 1.0, 2.5):
        assert np.min(np.abs(r - k)) > 1e-3
    if spec.name == "msle_eps0.2":
        assert np.min(np.abs(p - 0.2)) > 1e-3
    fd = _central_differences(spec, p, t, reduction, w, normalizer)
    want = hand_grad(spec, p, t, reduction, w, normalizer)
    # truncation O(h^2) and rounding O(eps |loss| / h) are both far below 1e-6
    assert_close(fd, want, 1e-6 * np.max(np.abs(want)) + 1e-6 * np.abs(want),
                 f"finite differences of {spec.name}")


# ---- (c) across backends, and the kinks -----------------------------------------------------------

# residuals: 0, +-0.5 (= delta, beta below), 1 (= default delta, beta), -2, 3
_KP = np.array([2.0, 2.5, 1.5, 3.0, 0.0, 5.0, 1.25, 1.0])
_KT = np.array([2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 1.25, 2.0])


def _kink_spec_list():
    from test_canonical_common import Spec, huber_formula

    extra = [
        Spec("huber_d0.5", lambda p, t, **k: polyloss.huber(p, t, delta=0.5, **k),
             huber_formula(0.5), lambda p, t: np.clip(p - t, -0.5, 0.5)),
    ]
    return [s for s in SPECS if s.name != "rmse"] + extra


KINK_SPECS = _kink_spec_list()


def _kink_inputs(spec, dtype):
    if spec.domain == "positive":  # msle: p = t (r = 0) and around it
        return (np.abs(_KP) + 0.0).astype(dtype), (np.abs(_KT) + 0.0).astype(dtype)
    return _KP.astype(dtype), _KT.astype(dtype)


@pytest.mark.parametrize(("backend", "dtype"), autograd_params())
@pytest.mark.parametrize("spec", spec_params(KINK_SPECS))
def test_grad_at_kinks_matches_hand_formula(spec, backend, dtype):
    p, t = _kink_inputs(spec, dtype)
    for reduction in ("mean", "sum"):
        _, g = backend.value_and_grad(_fn(spec, reduction, "count", False), [p, t], 0)
        want = hand_grad(spec, p, t, reduction)
        assert np.all(np.isfinite(g))
        assert_close(g, want, grad_tol(spec, dtype, p, t, reduction), f"{spec.name} at kinks")


@pytest.mark.parametrize(("backend", "dtype"), autograd_params())
def test_kink_conventions_by_hand(backend, dtype):
    n = 4
    t = np.full(n, 2.0, dtype=dtype)
    # |r| at r = 0: 0, for mae and smooth_l1(beta=0) and mape
    p0 = t.copy()
    for fn in (polyloss.mae, polyloss.mape,
               lambda a, b, **k: polyloss.smooth_l1(a, b, beta=0.0, **k)):
        _, g = backend.value_and_grad(fn, [p0, t], 0)
        assert np.all(g == 0), g
    # huber at |r| = delta = 0.5: +-delta/N; smooth_l1 at |r| = beta = 0.5: +-1/N
    p = np.array([2.5, 1.5, 2.5, 1.5], dtype=dtype)
    _, g = backend.value_and_grad(lambda a, b: polyloss.huber(a, b, delta=0.5), [p, t], 0)
    np.testing.assert_array_equal(g, np.array([0.5, -0.5, 0.5, -0.5], dtype) / n)
    _, g = backend.value_and_grad(lambda a, b: polyloss.smooth_l1(a, b, beta=0.5), [p, t], 0)
    np.testing.assert_array_equal(g, np.array([1, -1, 1, -1], dtype) / n)
    # pinball at r = 0 takes the r >= 0 branch: -q/N
    _, g = backend.value_and_grad(lambda a, b: polyloss.quantile(a, b, q=0.25), [p0, t], 0)
    np.testing.assert_array_equal(g, np.full(n, -0.25 / n, dtype))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("spec", spec_params(KINK_SPECS))
def test_grads_agree_across_backends(spec, dtype):
    if len(AUTOGRAD) < 2:
        pytest.skip("needs two autograd backends")
    p, t = _kink_inputs(spec, dtype)
    rng = np.random.default_rng(3)
    pr, tr = make_inputs(spec, (8,), dtype, seed=9)
    p, t = np.concatenate([p, pr]), np.concatenate([t, tr])
    w = rng.uniform(0.5, 2.0, p.shape).astype(dtype)
    fn = _fn(spec, "mean", "sum_of_weights", True)
    grads = {}
    for b in AUTOGRAD:
        b.setup()
        grads[b.name] = b.value_and_grad(fn, [p, t, w], 0)[1]
    first = AUTOGRAD[0].name
    tol = 2 * grad_tol(spec, dtype, p, t, "mean", w, "sum_of_weights")
    for name, g in grads.items():
        assert_close(g, grads[first], tol, f"{spec.name}: {name} vs {first}")


# ---- finite gradients at edge inputs ---------------------------------------------------------------

def _edge(dtype):
    big = np.float64(1e20)
    p = np.array([0.0, big, -big, 1e-20, 3.0, 0.5])
    t = np.array([0.0, 0.0, 0.0, 0.0, 3.0, 1.0])
    return p.astype(dtype), t.astype(dtype)


_EDGE_SPECS = [s for s in SPECS if s.name not in ("rmse", "mape", "mape_eps0.5")]


@pytest.mark.parametrize(("backend", "dtype"), autograd_params())
@pytest.mark.parametrize("spec", spec_params(_EDGE_SPECS))
def test_grads_finite_at_edges(spec, backend, dtype):
    # r = 0, r = +-1e20 (float32: the loss value itself may overflow, its gradient does not)
    # and r = 1e-20: the gradient is finite in the mathematics, so it must be here too
    p, t = _edge(dtype)
    if spec.domain == "positive":
        p = np.abs(p)
    for reduction in ("mean", "sum", "none"):
        _, g = backend.value_and_grad(_fn(spec, reduction, "count", False), [p, t], 0)
        assert np.all(np.isfinite(g)), (reduction, g)
        want = hand_grad(spec, p, t, reduction)
        # subnormal gradient elements (float32 rmse at r = 1e-20 is ~3e-41) carry few digits:
        # they compare absolutely, below the smallest normal number
        floor = float(np.finfo(dtype).smallest_normal)
        assert_close(g, want, grad_tol(spec, dtype, p, t, reduction) + floor,
                     f"{spec.name} {reduction} edge grads")


@pytest.mark.parametrize(("backend", "dtype"), autograd_params())
@pytest.mark.parametrize("name", ["mape", "mape_eps0.5"])
def test_mape_grads_finite_at_edges(name, backend, dtype):
    spec = SPEC[name]
    p = np.array([1.0, 1e20, -1e20, 1.0 + 2**-20, 2.0]).astype(dtype)
    t = np.array([1.0, 1.0, 1.0, 1.0, -0.25]).astype(dtype)
    _, g = backend.value_and_grad(_fn(spec, "sum", "count", False), [p, t], 0)
    assert np.all(np.isfinite(g))
    assert_close(g, hand_grad(spec, p, t, "sum"), grad_tol(spec, dtype, p, t, "sum"), name)


@pytest.mark.parametrize(("backend", "dtype"), autograd_params())
def test_rmse_grad_finite_with_one_zero_residual(backend, dtype):
    # a perfect element inside an imperfect batch: d rmse / dp_i = r_i / (N rmse) = 0 there
    p = np.array([1.0, 2.0, 3.0, 4.0]).astype(dtype)
    t = np.array([1.0, 1.0, 1.0, 1.0]).astype(dtype)
    for spec in (SPEC["rmse"], SPEC["rmse_eps1e-7"]):
        _, g = backend.value_and_grad(_fn(spec, "mean", "count", False), [p, t], 0)
        assert g[0] == 0 and np.all(np.isfinite(g))
        assert_close(g, hand_grad(spec, p, t), grad_tol(spec, dtype, p, t, "mean"), spec.name)
    # and with epsilon > 0 a perfect fit has gradient 0, not NaN
    _, g = backend.value_and_grad(_fn(SPEC["rmse_eps1e-7"], "mean", "count", False), [t, t], 0)
    assert np.all(g == 0), g


@pytest.mark.parametrize("backend", [pytest.param(b, id=b.name) for b in AUTOGRAD])
def test_rmse_float32_grad_at_huge_residual(backend):
    backend.setup()
    p = np.array([1e20, -1e20], dtype=np.float32)
    t = np.zeros(2, dtype=np.float32)
    _, g = backend.value_and_grad(_fn(SPEC["rmse"], "mean", "count", False), [p, t], 0)
    np.testing.assert_allclose(g, [0.5, -0.5], rtol=1e-6)


# ---- MXNet's classic NDArray path --------------------------------------------------------------------

def _ndarray_specs():
    return [pytest.param(s, id=s.name) for s in SPECS]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("spec", _ndarray_specs())
def test_mxnet_ndarray_autograd(spec, dtype):
    _check_ndarray_autograd(spec, dtype, weighted=False)


@pytest.mark.parametrize("name", ["mse", "huber"])
def test_mxnet_ndarray_autograd_sum_of_weights(name):
    _check_ndarray_autograd(SPEC[name], "float64", weighted=True)


def _check_ndarray_autograd(spec, dtype, weighted):
    # what Gluon code does: classic NDArrays, record, backward() outside any NumPy-shape scope
    require("mxnet")
    import mxnet as mx
    from mxnet import autograd

    p, t = make_inputs(spec, SHAPE, dtype, seed=21)
    w = make_weight("per_sample", SHAPE, dtype) if weighted else None
    normalizer = "sum_of_weights" if weighted else "count"
    nd_p = mx.nd.array(p, dtype=dtype)
    nd_t = mx.nd.array(t, dtype=dtype)
    kw = {} if w is None else {"sample_weight": mx.nd.array(w, dtype=dtype)}
    nd_p.attach_grad()
    with autograd.record():
        loss = spec.call(nd_p, nd_t, normalizer=normalizer, **kw)
    loss.backward()
    assert type(loss) is mx.nd.NDArray, type(loss)
    assert type(nd_p.grad) is mx.nd.NDArray
    want = oracle(spec, p, t, "mean", w, normalizer)
    assert_close(loss.asnumpy().reshape(want.shape), want,
                 tolerance(spec, dtype, p, t, "mean", w, normalizer), "NDArray value")
    assert_close(nd_p.grad.asnumpy(), hand_grad(spec, p, t, "mean", w, normalizer),
                 grad_tol(spec, dtype, p, t, "mean", w, normalizer), f"NDArray d{spec.name}/dpred")


def test_mxnet_ndarray_autograd_mse_by_hand():
    require("mxnet")
    import mxnet as mx
    from mxnet import autograd

    nd_pred = mx.nd.array(np.array([1.0, 2.0, 4.0]), dtype="float64")
    nd_target = mx.nd.array(np.array([1.0, 1.0, 1.0]), dtype="float64")
    nd_pred.attach_grad()
    with autograd.record():
        loss = polyloss.mse(nd_pred, nd_target)
    loss.backward()
    # mse = (0 + 1 + 9) / 3; d/dp = 2 r / 3 = [0, 2/3, 2]
    assert float(loss.asscalar()) == pytest.approx(10 / 3, rel=1e-15)
    np.testing.assert_allclose(nd_pred.grad.asnumpy(), [0.0, 2 / 3, 2.0], rtol=1e-15)


_MAPE_NDARRAY_SCRIPT = """
import numpy as np
import polyloss
import polyloss.backends.mxnet  # the numpy.bool shim MXNet 1.9.1 needs
import mxnet as mx
from mxnet import autograd

p = mx.nd.array(np.array([1.0, 2.0, 4.0]), dtype="float64")
t = mx.nd.array(np.array([1.5, 1.0, 3.0]), dtype="float64")
p.attach_grad()
with autograd.record():
    loss = polyloss.mape(p, t)
loss.backward()
print(repr(float(loss.asnumpy().reshape(()))), *p.grad.asnumpy().tolist())
"""


def test_mxnet_ndarray_autograd_mape_in_a_subprocess():
    require("mxnet")
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", _MAPE_NDARRAY_SCRIPT], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, f"exit status {proc.returncode}: {proc.stderr[-500:]}"
    value, *grad = (float(v) for v in proc.stdout.split())
    # by hand: 100/3 * (0.5/1.5 + 1/1 + 1/3) = 500/9; d/dp = 100/3 * sign(p - t) / |t|
    assert value == pytest.approx(500 / 9, rel=1e-14)
    np.testing.assert_allclose(grad, [-100 / 3 / 1.5, 100 / 3, 100 / 9], rtol=1e-14)

"""Bad input to the canonical losses: the error type and a message that names the culprit."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from conftest import INSTALLED, require
from test_canonical_common import (
    SPECS,
    assert_close,
    make_inputs,
    oracle,
    spec_params,
    tolerance,
)

import polyloss

ALL_LOSSES = [pytest.param(s.call, id=s.name) for s in SPECS]


def _f64(backend, shape):
    return backend.asarray(np.zeros(shape, dtype=np.float64) + 0.5)


# ---- shapes ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("loss", ALL_LOSSES)
def test_broadcastable_shapes_are_rejected(backend, loss):
    # (N, 1) against (N,) would broadcast to (N, N) and silently compute something else
    pred, target = _f64(backend, (4, 1)), _f64(backend, (4,))
    with pytest.raises(ValueError) as info:
        loss(pred, target)
    msg = str(info.value)
    assert "(4, 1)" in msg and "(4,)" in msg, msg
    assert "pred" in msg and "target" in msg, msg
    with pytest.raises(ValueError, match=re.escape("(4,)")):
        loss(target, pred)


def test_other_shape_mismatches(backend):
    for ps, ts in [((3,), (4,)), ((2, 3), (3, 2)), ((1, 3), (3,)), ((3,), (1,))]:
        with pytest.raises(ValueError) as info:
            polyloss.mse(_f64(backend, ps), _f64(backend, ts))
        assert str(ps) in str(info.value) and str(ts) in str(info.value)


@pytest.mark.parametrize("wshape", [(2, 4), (4, 3, 2), (5,), (3, 1), (4, 2)])
def test_sample_weight_that_would_enlarge_the_loss(backend, wshape):
    pred, target = _f64(backend, (4, 3)), _f64(backend, (4, 3))
    w = backend.asarray(np.ones(wshape))
    with pytest.raises(ValueError) as info:
        polyloss.mse(pred, target, sample_weight=w)
    msg = str(info.value)
    assert "sample_weight" in msg and str(wshape) in msg and "(4, 3)" in msg, msg


def test_sample_weight_of_a_one_d_loss_cannot_enlarge_it(backend):
    pred, target = _f64(backend, (4,)), _f64(backend, (4,))
    with pytest.raises(ValueError, match="sample_weight"):
        polyloss.mae(pred, target, sample_weight=backend.asarray(np.ones((2, 4))))
    with pytest.raises(ValueError, match="sample_weight"):
        polyloss.mae(pred, target, sample_weight=backend.asarray(np.ones((4, 1))))


# ---- option strings and parameters -------------------------------------------------------------------

@pytest.mark.parametrize("loss", ALL_LOSSES)
@pytest.mark.parametrize("bad", ["avg", "Mean", "", None, "sum_over_batch_size", 1])
def test_unknown_reduction(loss, bad):
    p = np.zeros(3)
    with pytest.raises(ValueError) as info:
        loss(p, p, reduction=bad)
    assert "reduction" in str(info.value) and repr(bad) in str(info.value)


@pytest.mark.parametrize("loss", ALL_LOSSES)
@pytest.mark.parametrize("bad", ["batch", "weights", None, "COUNT"])
def test_unknown_normalizer(loss, bad):
    p = np.zeros(3)
    with pytest.raises(ValueError) as info:
        loss(p, p, normalizer=bad)
    assert "normalizer" in str(info.value) and repr(bad) in str(info.value)


@pytest.mark.parametrize("delta", [0, 0.0, -1.0, -1e-300, math.nan, "1.0", None])
def test_huber_delta_must_be_positive(delta):
    p = np.zeros(3)
    with pytest.raises(ValueError, match="delta"):
        polyloss.huber(p, p + 1, delta=delta)


@pytest.mark.parametrize("beta", [-1.0, -1e-300, -1, math.nan, "1.0", None])
def test_smooth_l1_beta_must_be_non_negative(beta):
    p = np.zeros(3)
    with pytest.raises(ValueError, match="beta"):
        polyloss.smooth_l1(p, p + 1, beta=beta)


def test_smooth_l1_beta_zero_is_l1(backend):
    p, t = make_inputs(SPECS[0], (5, 3), "float64", seed=2)
    for reduction in ("none", "sum", "mean"):
        a = backend.to_numpy(polyloss.smooth_l1(backend.asarray(p), backend.asarray(t),
                                                beta=0.0, reduction=reduction))
        b = backend.to_numpy(polyloss.l1(backend.asarray(p), backend.asarray(t),
                                         reduction=reduction))
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(a, np.abs(p - t) if reduction == "none"
                                   else getattr(np, reduction)(np.abs(p - t)), rtol=1e-14)


@pytest.mark.parametrize("q", [-0.1, 1.1, -1e-12, 1 + 1e-12, math.nan, math.inf, "0.5", None])
def test_quantile_q_outside_unit_interval(q):
    p = np.zeros(3)
    with pytest.raises(ValueError, match="q"):
        polyloss.quantile(p, p, q=q)


@pytest.mark.parametrize("q", [0, 0.0, 1, 1.0])
def test_quantile_q_at_the_ends_is_allowed(q):
    # q = 0: the loss is max(0, -r) = relu(p - t); q = 1: relu(t - p)
    p, t = np.array([1.0, 3.0]), np.array([2.0, 2.0])
    got = polyloss.quantile(p, t, q=q, reduction="none")
    want = np.maximum(0.0, t - p) if q == 1 else np.maximum(0.0, p - t)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("loss", [polyloss.rmse, polyloss.mape])
@pytest.mark.parametrize("epsilon", [-1e-7, -1.0])
def test_negative_epsilon(loss, epsilon):
    p = np.zeros(3)
    with pytest.raises(ValueError, match="epsilon"):
        loss(p, p + 1, epsilon=epsilon)


@pytest.mark.parametrize("loss", [polyloss.rmse, polyloss.mape])
def test_nan_epsilon(loss):
    p = np.zeros(3)
    with pytest.raises(ValueError, match="epsilon"):
        loss(p, p + 1, epsilon=math.nan)


# ---- dtypes ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("loss", ALL_LOSSES)
@pytest.mark.parametrize("dtype", ["int32", "int64", "bool"])
def test_integer_or_boolean_pred(backend, loss, dtype):
    pred = backend.asarray(np.ones(3, dtype=dtype))
    target = _f64(backend, (3,))
    with pytest.raises(TypeError) as info:
        loss(pred, target)
    assert "pred" in str(info.value), str(info.value)


@pytest.mark.parametrize("spec", spec_params())
@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_integer_target_is_cast_to_the_prediction_dtype(backend, spec, dtype):
    rng = np.random.default_rng(4)
    t_int = rng.integers(1, 4, size=(4, 3)).astype(dtype)  # positive: valid for mape, msle
    for fdt in backend.dtypes:
        p = (t_int + rng.uniform(-0.9, 0.9, size=t_int.shape)).astype(fdt)
        out = spec.call(backend.asarray(p), backend.asarray(t_int), reduction="none")
        got = backend.to_numpy(out)
        assert got.dtype == np.dtype(fdt), got.dtype
        t64 = t_int.astype(np.float64)
        want = oracle(spec, p, t64, "none")
        assert_close(got, want, tolerance(spec, fdt, p, t64, "none"), f"{spec.name} int target")


@pytest.mark.parametrize("which", ["pred", "target", "sample_weight"])
def test_complex_arrays(backend, which):
    if backend.name == "mxnet":
        pytest.skip("MXNet has no complex dtype")
    c = backend.asarray(np.ones(3, dtype=np.complex128))
    f = _f64(backend, (3,))
    args = {"pred": f, "target": f, "sample_weight": None}
    args[which] = c
    with pytest.raises(TypeError) as info:
        polyloss.mse(args["pred"], args["target"], sample_weight=args["sample_weight"])
    assert which in str(info.value), str(info.value)


# ---- not arrays, or arrays of two frameworks ---------------------------------------------------------

@pytest.mark.parametrize("loss", ALL_LOSSES)
def test_python_list_as_pred(loss):
    pred = [0.5, 1.0, 2.0]
    with pytest.raises(TypeError, match="list"):
        loss(pred, np.ones(3))
    with pytest.raises(TypeError, match="list"):
        loss(np.ones(3), list(pred))


def test_only_scalars():
    with pytest.raises(TypeError, match="array"):
        polyloss.mse(1.0, 2.0)


_OTHERS = [b for b in INSTALLED if b.name != "numpy"]


@pytest.mark.parametrize("other", [pytest.param(b, id=b.name) for b in _OTHERS])
@pytest.mark.parametrize("which", ["pred", "target", "sample_weight"])
def test_arrays_from_two_frameworks(other, which):
    other.setup()
    a = np.ones(3)
    args = {"pred": a, "target": a, "sample_weight": None}
    args[which] = other.asarray(a)
    with pytest.raises(TypeError) as info:
        polyloss.mse(args["pred"], args["target"], sample_weight=args["sample_weight"])
    msg = str(info.value)
    assert "numpy" in msg and other.name in msg, msg
    assert which in msg, msg


def test_torch_and_jax_in_one_call():
    torch_b, jax_b = require("torch"), require("jax")
    a = np.ones(3)
    with pytest.raises(TypeError) as info:
        polyloss.huber(torch_b.asarray(a), jax_b.asarray(a))
    assert "torch" in str(info.value) and "jax" in str(info.value)


def test_mxnet_legacy_and_numpy_ndarrays_mix():
    # both are MXNet: one framework, no error; the result follows the prediction's type
    require("mxnet")
    import mxnet as mx

    nd = mx.nd.array(np.ones(3), dtype="float64")
    with mx.util.np_shape(True):
        npa = mx.np.array(np.zeros(3), dtype="float64")
    out = polyloss.mse(nd, npa, reduction="none")
    assert isinstance(out, mx.nd.NDArray) and not isinstance(out, mx.np.ndarray)
    np.testing.assert_array_equal(out.asnumpy(), np.ones(3))


# ---- devices -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("which", ["pred", "target", "sample_weight"])
def test_two_devices_torch_meta(which):
    # CPU-only torch has one real device; the 'meta' device stands in for the second one
    require("torch")
    import torch

    cpu = torch.zeros(3, dtype=torch.float64)
    meta = torch.zeros(3, dtype=torch.float64, device="meta")
    args = {"pred": cpu, "target": cpu, "sample_weight": None}
    args[which] = meta
    with pytest.raises(ValueError) as info:
        polyloss.mse(args["pred"], args["target"], sample_weight=args["sample_weight"])
    msg = str(info.value)
    assert "meta" in msg and "cpu" in msg and which in msg, msg


def test_all_on_meta_is_fine():
    require("torch")
    import torch

    meta = torch.zeros(3, 2, dtype=torch.float32, device="meta")
    out = polyloss.huber(meta, meta, reduction="none")
    assert out.device.type == "meta" and out.shape == (3, 2) and out.dtype == torch.float32


# ---- sample_weight that is not an array ------------------------------------------------------------

def test_python_scalar_sample_weight():
    p, t = np.array([1.0, 2.0]), np.array([0.0, 0.0])
    try:
        got = polyloss.mse(p, t, sample_weight=2.0)
    except TypeError as exc:
        assert "sample_weight" in str(exc)
    else:
        assert got == 2.0 * 2.5

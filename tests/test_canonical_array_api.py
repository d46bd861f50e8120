"""The Array-API-only backends: array-api-strict (default strict flags) runs the core and the
canonical API without errors, and Dask stays lazy until ``.compute()`` and matches NumPy."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import require
from test_canonical_common import (
    SPEC,
    SPECS,
    assert_close,
    make_inputs,
    make_weight,
    oracle,
    spec_params,
    tolerance,
)

from polyloss.core import regression as core
from polyloss.reduction import reduce_loss

SHAPE = (6, 4)
REDUCTION_CASES = [
    ("none", None, "count"), ("sum", None, "count"), ("mean", None, "count"),
    ("none", "per_sample", "count"), ("sum", "full", "count"),
    ("mean", "per_sample", "sum_of_weights"), ("mean", "broadcast", "count"),
]

# every core function with the parameters the canonical API passes it
CORE_CALLS = [
    ("squared_error", {}, "real"),
    ("absolute_error", {}, "real"),
    ("huber", {"delta": 0.7}, "real"),
    ("smooth_l1", {"beta": 0.7}, "real"),
    ("smooth_l1", {"beta": 0.0}, "real"),
    ("log_cosh", {}, "real"),
    ("relative_absolute_error", {"epsilon": 0.0}, "mape"),
    ("relative_absolute_error", {"epsilon": 0.5}, "mape_small"),
    ("squared_log_error", {"epsilon": None}, "positive"),
    ("squared_log_error", {"epsilon": 0.2}, "real"),
    ("pinball", {"q": 0.3}, "real"),
    ("root_mean_squared_error", {"epsilon": 0.0}, "real"),
    ("root_mean_squared_error", {"epsilon": 1e-7, "per_element": True}, "real"),
]


# ---- array-api-strict ---------------------------------------------------------------------------

def test_every_core_loss_is_exercised():
    import inspect

    public = {n for n, f in inspect.getmembers(core, inspect.isfunction)
              if f.__module__ == core.__name__ and not n.startswith("_")}
    assert public == {c[0] for c in CORE_CALLS}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(("fname", "params", "domain"), [
    pytest.param(*c, id="-".join([c[0]] + [f"{k}={v}" for k, v in c[1].items()]))
    for c in CORE_CALLS])
def test_core_runs_on_array_api_strict(fname, params, domain, dtype):
    require("array_api_strict")
    import array_api_strict as xp

    spec = next(s for s in SPECS if s.domain == domain)
    p, t = make_inputs(spec, SHAPE, dtype, seed=71)
    fn = getattr(core, fname)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # strict mode: no warnings either
        out = fn(xp.asarray(p), xp.asarray(t), xp=xp, **params)
    assert isinstance(out, type(xp.asarray(p))) and out.dtype == getattr(xp, dtype)
    import array_api_compat.numpy as npx

    want = fn(p.astype(np.float64), t.astype(np.float64), xp=npx, **params)
    got = np.asarray(out._array, dtype=np.float64)
    k = 16 * np.finfo(dtype).eps
    scale = np.abs(want)
    if fname == "squared_log_error":  # the subtraction of two log1p's cancels
        pc = p.astype(np.float64) if params["epsilon"] is None else np.maximum(p, 0.2)
        tc = t.astype(np.float64) if params["epsilon"] is None else np.maximum(t, 0.2)
        scale = scale + 2 * np.sqrt(want) * (np.abs(np.log1p(pc)) + np.abs(np.log1p(tc)))
    assert_close(got, want, k * scale, f"core.{fname} on array-api-strict")


@pytest.mark.parametrize(("reduction", "wmode", "normalizer"), REDUCTION_CASES)
def test_reduce_loss_on_array_api_strict(reduction, wmode, normalizer):
    require("array_api_strict")
    import array_api_strict as xp

    loss = np.random.default_rng(72).uniform(0, 2, SHAPE)
    w = make_weight(wmode, SHAPE, "float64")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = reduce_loss(xp, xp.asarray(loss), reduction,
                          None if w is None else xp.asarray(w), normalizer)
    import array_api_compat.numpy as npx

    want = np.asarray(reduce_loss(npx, loss, reduction, w, normalizer))
    np.testing.assert_allclose(np.asarray(out._array), want, rtol=1e-14)


@pytest.mark.parametrize("spec", spec_params())
def test_canonical_api_on_array_api_strict_without_warnings(spec):
    b = require("array_api_strict")
    import array_api_strict as xp

    for dtype in ("float32", "float64"):
        p, t = make_inputs(spec, SHAPE, dtype, seed=73)
        for reduction, wmode, normalizer in REDUCTION_CASES:
            w = make_weight(wmode, SHAPE, dtype)
            kw = {} if w is None else {"sample_weight": xp.asarray(w)}
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                out = spec.call(xp.asarray(p), xp.asarray(t), reduction=reduction,
                                normalizer=normalizer, **kw)
            assert out.dtype == getattr(xp, dtype)
            assert_close(b.to_numpy(out), oracle(spec, p, t, reduction, w, normalizer),
                         tolerance(spec, dtype, p, t, reduction, w, normalizer),
                         f"{spec.name} strict {dtype} {reduction}")


# ---- dask -------------------------------------------------------------------------------------------

def _tracked(a, calls, chunks):
    """A dask array over ``a`` that records every time one of its blocks is computed."""
    import dask.array as da

    def touch(block):
        calls.append(block.shape)
        return block

    return da.from_array(a, chunks=chunks).map_blocks(touch, dtype=a.dtype,
                                                      meta=np.empty((0,) * a.ndim, a.dtype))


@pytest.mark.parametrize(("reduction", "wmode", "normalizer"), REDUCTION_CASES)
@pytest.mark.parametrize("spec", spec_params())
def test_dask_stays_lazy_until_compute(spec, reduction, wmode, normalizer):
    require("dask")
    import dask.array as da

    dtype = "float64"
    p, t = make_inputs(spec, SHAPE, dtype, seed=74)
    w = make_weight(wmode, SHAPE, dtype)
    calls: list = []
    dp, dt = _tracked(p, calls, (3, 2)), _tracked(t, calls, (3, 2))
    kw = {} if w is None else {"sample_weight": _tracked(w, calls, tuple(2 for _ in w.shape))}
    out = spec.call(dp, dt, reduction=reduction, normalizer=normalizer, **kw)
    assert isinstance(out, da.Array), type(out)
    assert calls == [], f"polyloss computed {len(calls)} block(s) before .compute()"
    assert out.dtype == np.dtype(dtype)
    assert out.shape == (SHAPE if reduction == "none" else ())
    got = np.asarray(out.compute())
    assert calls, "compute() never read the inputs"
    assert_close(got, oracle(spec, p, t, reduction, w, normalizer),
                 tolerance(spec, dtype, p, t, reduction, w, normalizer),
                 f"{spec.name} dask {reduction}")


def test_dask_float32_and_many_chunks_match_numpy():
    require("dask")
    import dask.array as da

    spec = SPEC["huber"]
    p, t = make_inputs(spec, (40, 6), "float32", seed=75)
    out = spec.call(da.from_array(p, chunks=(7, 5)), da.from_array(t, chunks=(7, 5)))
    assert isinstance(out, da.Array)
    np.testing.assert_allclose(out.compute(), oracle(spec, p, t),
                               rtol=4 * np.finfo(np.float32).eps * np.log2(p.size))


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_dask_unknown_chunk_sizes(reduction):
    require("dask")
    import dask.array as da

    spec = SPEC["mse"]
    p, t = make_inputs(spec, (6, 2), "float64", seed=76)
    dp, dt = da.from_array(p, chunks=(3, 2)), da.from_array(t, chunks=(3, 2))
    keep = dp[:, 0] > -np.inf  # every row, but dask cannot know how many
    up, ut = dp[keep], dt[keep]
    assert np.isnan(up.shape[0])
    out = spec.call(up, ut, reduction=reduction)
    np.testing.assert_allclose(np.asarray(out.compute()), oracle(spec, p, t, reduction),
                               rtol=1e-12)

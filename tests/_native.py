"""Shared helpers for the convention-mirror tests (``tests/test_mirror_*.py``).

- ``KINDS``: every array type a mirror must accept (NumPy, torch, JAX, TensorFlow, MXNet
  ``mx.np`` and ``mx.nd``, array-api-strict, Dask), how to build one from NumPy, how to read
  it back, and how to recognise it (a mirror returns the caller's array type).
- ``make_inputs``: the random and edge inputs, built in NumPy and cast there, so that the
  native loss and every backend see identical bits.
- ``assert_close``: the tolerance policy of the brief. float64: ``rtol = 1e-12``;
  float32: ``rtol = 8 * eps32 * max(1, log2(n))`` with ``n`` the reduction length. An
  absolute tolerance is only used where it is explained at the call site (cancellation in
  Keras's MSLE/log-cosh, and subnormal flushing, see ``SUBNORMAL_FLOOR``).

Every expected value in the mirror tests comes from the real native framework run in the
test itself; nothing here computes a loss.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from conftest import INSTALLED_NAMES

from polyloss.parity.backends import BACKENDS

EPS = {"float32": float(np.finfo(np.float32).eps), "float64": float(np.finfo(np.float64).eps)}

# TensorFlow and XLA run float32 with flush-to-zero / denormals-are-zero on CPU, torch, NumPy
# and MXNet keep subnormals (reference/native-parity.md, summary #12). A float32 result below
# the smallest normal number is therefore 0 on some backends and a subnormal on others; that
# is a property of the backend's arithmetic, not of the mirror, so float32 comparisons accept
# an absolute difference up to the smallest normal float32 (1.18e-38).
SUBNORMAL_FLOOR = {"float32": float(np.finfo(np.float32).tiny), "float64": 0.0}


def rtol_for(dtype: str, n: int = 1) -> float:
    """The brief's relative tolerance: 1e-12 in float64, a few ulps x log2(n) in float32."""
    if np.dtype(dtype) == np.float64:
        return 1e-12
    return 8.0 * EPS["float32"] * max(1.0, math.log2(max(n, 1)))


def cancel_atol(dtype: str, scale: float = 1.0, ulps: int = 8) -> float:
    """Absolute tolerance for a formula that cancels terms of magnitude ~log 2.

    Keras's MSLE ``(log(max(p, eps) + 1) - log(max(t, eps) + 1))²`` and log-cosh
    ``x + softplus(-2x) - log 2`` (and optax's ``logaddexp(e, -e) - log 2``) subtract
    quantities of order log 2 ~ 0.69; the result can be far smaller than those terms, so
    the 1-ulp differences between two libraries' ``log``/``exp``/``softplus`` kernels become
    large *relative* errors while staying a few ulps of log 2 in *absolute* terms. ``scale``
    is how much the reduction multiplies that per-element error (e.g. ``Σ|w|`` for a sum).
    """
    return ulps * float(np.spacing(np.asarray(math.log(2.0), dtype=dtype))) * scale


def to_numpy(x: Any) -> np.ndarray:
    """Any backend's array as a NumPy array (MXNet: read under NumPy shape semantics)."""
    mod = type(x).__module__.partition(".")[0]
    if mod == "mxnet":
        import mxnet as mx

        with mx.util.np_shape(True):
            out = x.asnumpy()
        mx.nd.waitall()
        return out
    return BACKENDS["numpy"].to_numpy(x) if mod == "numpy" else _generic_to_numpy(x)


def _generic_to_numpy(x: Any) -> np.ndarray:
    from polyloss.parity.backends import _to_numpy

    return _to_numpy(x)


def assert_close(actual: Any, expected: Any, *, dtype: str, n: int = 1, atol: float = 0.0,
                 rtol: float | None = None, check_dtype: bool = True, err_msg: str = "") -> None:
    """Same shape, same dtype, equal NaN pattern and infinities, values within tolerance."""
    a = actual if isinstance(actual, np.ndarray) else to_numpy(actual)
    e = expected if isinstance(expected, np.ndarray) else to_numpy(expected)
    if isinstance(a, ClassicNDResult) and a.shape == (1,) and np.shape(e) == ():
        a = a.reshape(())
    a, e = np.asarray(a), np.asarray(e)
    assert a.shape == e.shape, f"shape {a.shape} != native {e.shape} {err_msg}"
    if check_dtype:
        assert a.dtype == e.dtype, f"dtype {a.dtype} != native {e.dtype} {err_msg}"
    atol = max(atol, SUBNORMAL_FLOOR[str(np.dtype(dtype))])
    np.testing.assert_allclose(
        a.astype(np.float64), e.astype(np.float64),
        rtol=rtol_for(dtype, n) if rtol is None else rtol, atol=atol, equal_nan=True,
        err_msg=err_msg,
    )


# ---- array kinds ------------------------------------------------------------------------

@dataclass(frozen=True)
class Kind:
    """One array type a mirror is run on."""

    name: str
    backend: str  # the polyloss.parity backend that sets it up
    from_numpy: Callable[[np.ndarray], Any]
    is_kind: Callable[[Any], bool]

    def available(self) -> bool:
        return self.backend in INSTALLED_NAMES

    def asarray(self, a: np.ndarray) -> Any:
        BACKENDS[self.backend].setup()
        return self.from_numpy(np.asarray(a))


def _is_numpy(x: Any) -> bool:
    # NumPy reductions return NumPy scalars (np.float32/np.float64), NumPy's own 0-d result
    # type; everything else is an ndarray.
    return isinstance(x, (np.ndarray, np.generic))


def _is_torch(x: Any) -> bool:
    import torch

    return isinstance(x, torch.Tensor)


def _is_jax(x: Any) -> bool:
    import jax

    return isinstance(x, jax.Array)


def _is_tf(x: Any) -> bool:
    import tensorflow as tf

    return isinstance(x, tf.Tensor)


def _mx_np(a: np.ndarray) -> Any:
    import mxnet as mx

    with mx.util.np_shape(True):
        return mx.np.array(a, dtype=a.dtype)


def _mx_nd(a: np.ndarray) -> Any:
    import mxnet as mx

    with mx.util.np_shape(True):
        return mx.nd.array(a, dtype=a.dtype)


def _is_mx_np(x: Any) -> bool:
    import mxnet as mx

    return isinstance(x, mx.np.ndarray)


def _is_mx_nd(x: Any) -> bool:
    import mxnet as mx

    return isinstance(x, mx.nd.NDArray) and not isinstance(x, mx.np.ndarray)


def _is_strict(x: Any) -> bool:
    import array_api_strict as xp

    return isinstance(x, type(xp.asarray(0.0)))


def _is_dask(x: Any) -> bool:
    import dask.array as da

    return isinstance(x, da.Array)


def _from(backend: str) -> Callable[[np.ndarray], Any]:
    return lambda a: BACKENDS[backend].asarray(a)


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("numpy", "numpy", lambda a: a, _is_numpy),
        Kind("torch", "torch", _from("torch"), _is_torch),
        Kind("jax", "jax", _from("jax"), _is_jax),
        Kind("tensorflow", "tensorflow", _from("tensorflow"), _is_tf),
        Kind("mx.np", "mxnet", _mx_np, _is_mx_np),
        Kind("mx.nd", "mxnet", _mx_nd, _is_mx_nd),
        Kind("array_api_strict", "array_api_strict", _from("array_api_strict"), _is_strict),
        Kind("dask", "dask", _from("dask"), _is_dask),
    )
}

ALL_KIND_NAMES = list(KINDS)


def kind_params(exclude: tuple[str, ...] = ()) -> list:
    """``pytest.param`` per array kind; kinds whose framework is missing skip with a reason."""
    out = []
    for name, k in KINDS.items():
        if name in exclude:
            continue
        marks = () if k.available() else (
            pytest.mark.skip(reason=f"{k.backend} is not installed in this environment"),)
        out.append(pytest.param(k, id=name, marks=marks))
    return out


def run_on(kind: Kind, fn: Callable[..., Any], *arrays: np.ndarray | None,
           bugs: KnownBugs | None = None) -> np.ndarray:
    """``fn`` on ``kind``'s arrays; asserts the result is of that kind; returns it in NumPy.

    MXNet runs asynchronously: an error in an operator surfaces at the next synchronisation,
    possibly in an unrelated later test. ``mx.nd.waitall()`` right after the call attributes
    it to this call (and consumes it, so it cannot leak into other tests).
    """
    args = [None if a is None else kind.asarray(a) for a in arrays]
    out = fn(*args)
    if kind.backend == "mxnet":
        import mxnet as mx

        try:
            mx.nd.waitall()
        except mx.base.MXNetError as e:
            empty = any(a is not None and a.size == 0 for a in arrays)
            if bugs is None or not empty or "Shape size mismatch" not in str(e):
                raise
            bugs.seen("mxnet-empty-reduce")
    assert kind.is_kind(out), f"{kind.name} in, {type(out).__module__}.{type(out).__name__} out"
    result = to_numpy(out)
    if kind.name == "mx.nd":
        # classic NDArrays have no 0-d arrays: polyloss returns a scalar as shape (1,), like
        # mx.nd.sum (documented); assert_close accepts exactly that against a 0-d native
        result = result.view(ClassicNDResult)
    return result


class ClassicNDResult(np.ndarray):
    """A result computed on ``mx.nd.NDArray`` inputs (scalars come back with shape (1,))."""


# ---- polyloss bugs found by these tests (fixed; kept as regression checks) -------------------

KNOWN_BUGS = {
    "mxnet-inf-sum": (
        "on MXNet arrays a sum/mean over values that include +-inf returned NaN where the "
        "native returns inf (mx.np.sum/mx.np.mean compute inf - inf); the adapter reduces "
        "with the legacy operators"),
    "mxnet-empty-reduce": (
        "on MXNet arrays a mean over a non-empty axis of an empty batch poisoned MXNet's "
        "engine ('Shape size mismatch 0 v.s. 1' at the next synchronisation); the adapter "
        "builds zero-size reductions directly"),
}


class KnownBugs:
    """Regression checks for the MXNet adapter bugs above: a symptom is a test failure."""

    def seen(self, key: str) -> None:
        raise AssertionError("regression: " + KNOWN_BUGS[key])

    def assert_close(self, kind: Kind, actual: Any, expected: Any, **kw: Any) -> None:
        a = actual if isinstance(actual, np.ndarray) else to_numpy(actual)
        if isinstance(a, ClassicNDResult) and a.shape == (1,) and np.shape(expected) == ():
            a = a.reshape(())
        a = np.asarray(a)
        e = np.asarray(expected if isinstance(expected, np.ndarray) else to_numpy(expected))
        if kind.backend == "mxnet" and a.shape == e.shape and (np.isinf(e) & np.isnan(a)).any():
            self.seen("mxnet-inf-sum")
        assert_close(a, e, **kw)

    def check(self) -> None:
        """Nothing left to report: every symptom already failed the test in ``seen``."""


def require_module(name: str, reason: str | None = None) -> Any:
    """``pytest.importorskip`` with the standard reason (MXNet gets its NumPy shim first)."""
    if name == "mxnet":
        if "mxnet" not in INSTALLED_NAMES:
            pytest.skip("mxnet is not installed (or not usable with this NumPy) in this "
                        "environment", allow_module_level=True)
        BACKENDS["mxnet"].setup()  # imports polyloss.backends.mxnet: the numpy.bool shim
    elif name in BACKENDS and name not in INSTALLED_NAMES:
        pytest.skip(f"{name} is not installed in this environment", allow_module_level=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        mod = pytest.importorskip(name, reason=reason or f"{name} is not installed in this "
                                                         "environment")
    if name in BACKENDS:
        BACKENDS[name].setup()
    return mod


# torch before TensorFlow (they share libraries); Keras only with its TensorFlow backend
_NATIVE_ORDER = ("torch", "tensorflow", "keras", "jax", "optax", "mxnet")
_NATIVE_MISSING = {
    "torch": "torch is not installed in this environment",
    "tensorflow": "tensorflow is not installed in this environment",
    "keras": "keras (TensorFlow backend) is not installed",
    "jax": "jax is not installed in this environment",
    "optax": "jax/optax are not installed in this environment",
    "mxnet": "mxnet is not installed (or not usable with this NumPy) in this environment",
}


@functools.cache
def _native_module(name: str) -> Any:
    def optional(module: str) -> Any:
        try:
            return require_module(module)
        except pytest.skip.Exception:
            return None

    if name == "keras":
        keras = optional("keras") if _native_module("tensorflow") is not None else None
        return keras if keras is not None and keras.backend.backend() == "tensorflow" else None
    if name == "optax":
        return optional("optax") if _native_module("jax") is not None else None
    return optional(name)


def natives(*names: str) -> tuple:
    """The named native frameworks (``torch``, ``tensorflow``, ``keras``, ``jax``, ``optax``,
    ``mxnet``), each ``None`` where it is not installed, so that a file's other tests still
    run; imported in a safe order (JAX with 64-bit enabled, by the parity set-up)."""
    for name in _NATIVE_ORDER:
        if name in names:
            _native_module(name)
    return tuple(_native_module(name) for name in names)


def needs(name: str) -> Any:
    """A ``skipif`` mark for tests that call the native ``name``."""
    return pytest.mark.skipif(_native_module(name) is None, reason=_NATIVE_MISSING[name])


# ---- inputs -------------------------------------------------------------------------------

N, D, T = 6, 5, 4  # batch, features, and the extra axis of 3-D inputs

CASES = ("random", "zero", "threshold", "huge", "tiny", "batch1", "empty", "3d")


def make_inputs(case: str, dtype: str, rng: np.random.Generator, *, threshold: float = 1.0,
                positive: bool = False, shape: tuple[int, ...] | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """``(pred, target)`` for one input case, in ``dtype``.

    - ``random``: normal(0, 2), so Huber-type losses see both branches.
    - ``zero``: as random, but half of the entries have ``pred == target`` exactly (the |r|
      kink).
    - ``threshold``: ``pred - target = ±threshold`` exactly (dyadic values, exact in
      float32), the Huber/smooth-L1 branch point.
    - ``huge``: half of the residuals are ±1e20 (the square overflows float32).
    - ``tiny``: ``target = 0`` and ``pred = ±1e-20·u`` (squares are subnormal or 0).
    - ``batch1``/``empty``: batch of one / of zero; ``3d``: shape ``(N, T, D)``.

    ``positive`` (MSLE, MAPE) draws magnitudes and keeps a few non-positive entries, which
    exercise Keras's clipping at 1e-7.
    """
    if shape is None:
        shape = {"batch1": (1, D), "empty": (0, D), "3d": (N, T, D)}.get(case, (N, D))
    draw = (lambda s: rng.gamma(2.0, 1.0, size=s)) if positive else (
        lambda s: rng.normal(0.0, 2.0, size=s))
    target = draw(shape)
    pred = draw(shape)
    if positive:  # a few non-positive values, which Keras's MSLE clips at 1e-7
        target = np.where(rng.random(shape) < 0.1, -0.5 * target, target)
        pred = np.where(rng.random(shape) < 0.1, -0.5 * pred, pred)
    if case == "zero":
        mask = rng.random(shape) < 0.5
        pred = np.where(mask, target, pred)
    elif case == "threshold":
        target = np.round(target * 8) / 8
        sign = np.where(rng.random(shape) < 0.5, -1.0, 1.0)
        pred = target + sign * threshold
        assert np.all(np.abs(pred.astype(dtype) - target.astype(dtype)) == threshold)
    elif case == "huge":
        big = rng.random(shape) < 0.5
        sign = np.where(rng.random(shape) < 0.5, -1.0, 1.0)
        pred = np.where(big, target + sign * 1e20, pred)
    elif case == "tiny":
        target = np.zeros(shape)
        sign = np.where(rng.random(shape) < 0.5, -1.0, 1.0)
        pred = sign * 1e-20 * (1.0 + rng.random(shape))
    return pred.astype(dtype), target.astype(dtype)


def assert_close_scaled(actual, expected, *, dtype, n=1, scale=0.0, err_msg="", check_dtype=True):
    """``_native.assert_close``'s policy (same shape, dtype, NaN pattern and infinities; float64
    ``rtol = 1e-12``, float32 ``8·eps·log2(n)``), where each element may also differ by that
    same relative tolerance times ``scale`` (broadcast to the result): the magnitude of the
    terms that cancel in that element. ``scale = 0`` is exactly ``assert_close``."""
    a = actual if isinstance(actual, np.ndarray) else to_numpy(actual)
    e = np.asarray(expected if isinstance(expected, np.ndarray) else to_numpy(expected))
    if isinstance(a, ClassicNDResult) and a.shape == (1,) and e.shape == ():
        a = a.reshape(())  # classic mx.nd results have no 0-d arrays
    a = np.asarray(a)
    assert a.shape == e.shape, f"shape {a.shape} != expected {e.shape} {err_msg}"
    if check_dtype:
        assert a.dtype == e.dtype, f"dtype {a.dtype} != expected {e.dtype} {err_msg}"
    rtol = rtol_for(dtype, n)
    a64, e64 = a.astype(np.float64), e.astype(np.float64)
    atol = (rtol * np.abs(np.broadcast_to(np.asarray(scale, dtype=np.float64), e.shape))
            + SUBNORMAL_FLOOR[str(np.dtype(dtype))])
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(a64) & np.isfinite(e64)
        ok = ((a64 == e64) | (np.isnan(a64) & np.isnan(e64))
              | (finite & (np.abs(a64 - e64) <= rtol * np.abs(e64) + atol)))
    if not ok.all():
        idx = tuple(int(i) for i in np.argwhere(~ok)[0]) if ok.ndim else ()
        raise AssertionError(
            f"{int((~ok).sum())} of {ok.size} elements differ {err_msg}; first at {idx}: "
            f"{float(a64[idx])!r} vs expected {float(e64[idx])!r} (rtol {rtol:.3g}, "
            f"atol {float(atol[idx]):.3g})")

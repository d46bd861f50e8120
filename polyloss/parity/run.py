"""Run the parity matrix: every case x installed backend x dtype x edge input.

Canonical losses are compared with the oracle (the same loss on NumPy float64 arrays built
from the same cast inputs); mirrors with their framework's real native loss, run on that
framework's own arrays. Gradients (w.r.t. the prediction) are compared with the native's
gradient for mirrors, and with the float64 gradient of the first autograd backend for
canonical losses (the test suite also checks them against analytic formulas and finite
differences).
"""

from __future__ import annotations

import importlib
import math
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from polyloss.parity.backends import TestBackend, available_backends, get_backend
from polyloss.parity.cases import ALL_CASES, Case, make_inputs

POLYLOSS_MODULES = {
    "polyloss": "polyloss", "torch": "polyloss.torch", "keras": "polyloss.keras",
    "gluon": "polyloss.gluon", "optax": "polyloss.optax",
}
NATIVE_BACKEND = {"torch": "torch", "keras": "tensorflow", "gluon": "mxnet", "optax": "jax"}


@dataclass
class Result:
    case: Case
    backend: str
    dtype: str
    edge: str
    reference: str  # "oracle" or "native"
    value_err: float  # max relative error of the value (0 when identical)
    grad_err: float | None  # max relative error of the gradient, None when not checked
    tol: float
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.value_err <= self.tol and (self.grad_err is None or self.grad_err <= self.tol)


def tolerance(dtype: str, n: int) -> float:
    """float64: 1e-12 relative; float32/float16: a few ulps times log2 of the reduction length."""
    if dtype == "float64":
        return 1e-12
    eps = float(np.finfo(dtype).eps)
    return 8.0 * eps * max(1.0, math.log2(max(n, 1)))


def relative_error(actual: Any, expected: Any, floor: float = 0.0) -> float:
    """Max ``|a - e| / max(|e|, floor)``; NaN matching NaN and equal infinities count as equal.

    ``floor`` is the magnitude below which errors count as absolute: the size of the terms
    a result was computed from (cancellation), or the largest gradient element.
    """
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    if a.shape != e.shape:
        return math.inf
    if a.size == 0:
        return 0.0
    same = (a == e) | (np.isnan(a) & np.isnan(e))
    if same.all():
        return 0.0
    with np.errstate(invalid="ignore", over="ignore"):
        denom = np.maximum(np.abs(e), max(floor, np.finfo(np.float64).tiny))
        err = np.where(same, 0.0, np.abs(a - e) / denom)
    err = np.where(np.isnan(err), math.inf, err)
    return float(err.max())


def _native_namespace(convention: str) -> Any:
    if convention == "torch":
        import torch.nn
        import torch.nn.functional as F

        return types.SimpleNamespace(**vars(F), **{
            k: getattr(torch.nn, k) for k in dir(torch.nn) if k.endswith("Loss")
        })
    if convention == "keras":
        import keras

        return keras.losses
    if convention == "gluon":
        importlib.import_module("polyloss.backends.mxnet")  # the numpy.bool shim before mxnet
        return importlib.import_module("mxnet.gluon.loss")
    if convention == "optax":
        import optax

        return optax.losses
    raise ValueError(convention)


def _native_available(convention: str) -> bool:
    module = {"torch": "torch", "keras": "keras", "gluon": "mxnet", "optax": "optax"}[convention]
    if convention == "keras" and importlib.util.find_spec("tensorflow") is None:
        return False
    if convention == "gluon" and int(np.__version__.split(".")[0]) >= 2:
        return False
    return importlib.util.find_spec(module) is not None


def _native_value_and_grad(convention: str, call: Callable, arrays: list) -> tuple:
    """Run ``call(native_lib, pred, target, weight)`` on the native framework's own arrays."""
    lib = _native_namespace(convention)
    if convention == "gluon":
        import mxnet as mx
        from mxnet import autograd

        xs = [None if a is None else mx.nd.array(a, dtype=a.dtype) for a in arrays]
        xs[0].attach_grad()
        with autograd.record():
            out = call(lib, *xs)
        out.backward()
        return out.asnumpy(), xs[0].grad.asnumpy()
    backend = get_backend(NATIVE_BACKEND[convention])
    return _value_and_grad(backend, lambda *xs: call(lib, *xs), arrays)


def _value_and_grad(backend: TestBackend, fn: Callable, arrays: list) -> tuple:
    present = [a for a in arrays if a is not None]
    slots = [a is not None for a in arrays]

    def wrapped(*xs: Any) -> Any:
        it = iter(xs)
        return fn(*[next(it) if s else None for s in slots])

    if backend.differentiable:
        return backend.value_and_grad(wrapped, present, 0)
    return backend.to_numpy(wrapped(*[backend.asarray(a) for a in present])), None


def run(
    backends: Iterable[str] | None = None,
    conventions: Iterable[str] | None = None,
    losses: Iterable[str] | None = None,
    dtypes: Iterable[str] = ("float32", "float64"),
    progress: Callable[[int, int], None] | None = None,
) -> list[Result]:
    """Run the matrix and return one ``Result`` per (case, backend, dtype, edge)."""
    targets = available_backends(list(backends) if backends else None)
    cases = [
        c for c in ALL_CASES
        if (not conventions or c.convention in conventions)
        and (not losses or c.family in losses)
        and (c.convention == "polyloss" or _native_available(c.convention))
    ]
    grad_ref_backend = next((b for b in available_backends() if b.differentiable), None)
    jobs = [
        (case, edge, dtype)
        for case in cases for edge in ("random",) + case.edges for dtype in dtypes
        if case.native_dtypes is None or dtype in case.native_dtypes
    ]
    results: list[Result] = []
    for i, (case, edge, dtype) in enumerate(jobs):
        if progress:
            progress(i, len(jobs))
        results.extend(_run_job(case, edge, dtype, targets, grad_ref_backend))
    if progress:
        progress(len(jobs), len(jobs))
    return results


def _run_job(case: Case, edge: str, dtype: str, targets: list[TestBackend],
             grad_ref: TestBackend | None) -> list[Result]:
    arrays = make_inputs(case, None if edge == "random" else edge, dtype)
    module = importlib.import_module(POLYLOSS_MODULES[case.convention])
    n = arrays[0].size
    try:
        return _compare(case, edge, dtype, targets, grad_ref, arrays, module, n)
    except Exception as exc:  # the reference itself failed: one failed cell, never hidden
        return [Result(case, "reference", dtype, edge, "oracle/native", math.inf, None, 0.0,
                       f"{type(exc).__name__}: {exc}")]


def _compare(case: Case, edge: str, dtype: str, targets: list[TestBackend],
             grad_ref: TestBackend | None, arrays: list, module: Any, n: int) -> list[Result]:
    if case.convention == "polyloss":
        oracle_arrays = [a if a is None or a.dtype.kind in "iu" else a.astype(np.float64)
                         for a in arrays]
        ref_value = np.asarray(case.call(module, *oracle_arrays))
        ref_grad = None
        if grad_ref is not None:
            _, ref_grad = _value_and_grad(grad_ref, lambda *xs: case.call(module, *xs),
                                          oracle_arrays)
        reference, ref_dtype = "oracle", dtype
    else:
        ref_value, ref_grad = _native_value_and_grad(case.convention, case.call, arrays)
        reference, ref_dtype = "native", str(np.asarray(ref_value).dtype)
    out_dtype = ref_dtype if ref_dtype in ("float16", "float32", "float64") else dtype
    if case.native_promotes:
        out_dtype = dtype
    tol = tolerance(case.compute_dtype or out_dtype, n)
    if reference == "native" and out_dtype == "float32":
        tol = max(tol, case.native_float32_tol)
    # subnormal results: flush-to-zero (TensorFlow, XLA) and ~5-digit subnormals both pass
    floor = max(case.term_scale, float(np.finfo(out_dtype).smallest_normal) / tol)
    out = []
    for backend in targets:
        if dtype not in backend.dtypes:
            continue
        try:
            value, grad = _value_and_grad(backend, lambda *xs: case.call(module, *xs), arrays)
        except Exception as exc:  # reported as a failed cell, never hidden
            out.append(Result(case, backend.name, dtype, edge, reference, math.inf, None, tol,
                              f"{type(exc).__name__}: {exc}"))
            continue
        expected = ref_value
        if case.convention == "gluon" and np.ndim(value) == 0 and np.shape(ref_value) == (1,):
            # classic mx.nd has no 0-d arrays: a Gluon scalar (PoissonNLLLoss) is shape (1,)
            expected = np.asarray(ref_value).reshape(())
        value_err = relative_error(value, expected, floor)
        grad_err = None
        if grad is not None and ref_grad is not None:
            grad_err = relative_error(grad, ref_grad, max(floor, _grad_scale(ref_grad, n)))
        out.append(Result(case, backend.name, dtype, edge, reference, value_err, grad_err, tol))
    return out


def _grad_scale(grad: np.ndarray, n: int) -> float:
    # gradient vectors are compared relative to their largest element (or 1/n, a mean's
    # gradient scale, when all are 0): an element that is mathematically 0 may come out
    # as a rounding residue of its neighbours' size
    g = np.abs(np.asarray(grad, dtype=np.float64))
    g = g[np.isfinite(g)]
    return max(float(g.max()) if g.size else 0.0, 1.0 / max(n, 1))

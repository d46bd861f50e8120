"""Numerical soundness at the extremes, for every loss, on every backend, in every dtype.

One call per (loss, backend, dtype): a batch whose rows hold the extreme values of the loss's
domain (logits of ±1e4 and all-equal logits, probabilities of exactly 0 and 1 (right and
wrong), residuals of 1e±30 (the largest and smallest normal magnitudes a 16-bit float holds
there), zero vectors, zero counts, zero and huge variances) next to ordinary rows. The
reference is the same call on NumPy float64 arrays holding the very same (cast) values.

- The result is finite exactly where the reference is finite and fits the dtype, infinite
  with the reference's sign where the reference is infinite, and never NaN where the
  reference is not;
- it agrees with the reference to the parity tolerance (``polyloss.parity.run``);
- canonical losses return the input dtype (float16/bfloat16 are computed in float32 inside);
- on autograd backends the gradient is finite wherever torch's float64 gradient of the
  reference is finite.

Losses whose value is infinite by their mathematics (MAPE at a zero target, an unclamped log
of probability 0, KL against a zero probability, NLL of a -inf log-probability) are checked
separately: ``inf`` exactly at those positions, finite elsewhere.
"""

from __future__ import annotations

import importlib
import re

import numpy as np
import pytest
from _bad_input import CTC_DOMAINS, TIME_MAJOR, derives_its_arguments, one_canonical_per_family
from conftest import INSTALLED_NAMES

import polyloss
from polyloss.parity.cases import ALL_CASES, Case, make_inputs
from polyloss.parity.run import POLYLOSS_MODULES, relative_error, tolerance

DTYPES = ("float16", "bfloat16", "float32", "float64")
# which backends hold which dtypes (NumPy has no bfloat16; array-api-strict no float16; MXNet's
# mx.np no bfloat16)
DTYPES_OF = {
    "numpy": ("float16", "float32", "float64"), "torch": DTYPES, "jax": DTYPES,
    "tensorflow": DTYPES, "mxnet": ("float16", "float32", "float64"),
    "array_api_strict": ("float32", "float64"), "dask": ("float16", "float32", "float64"),
}
# one call per loss family of the canonical API there: a first call per shape and dtype
# compiles every operation (JAX) or builds and computes a graph (Dask)
SLOW_BACKENDS = ("jax", "dask")

CASES = [c for c in ALL_CASES if not derives_its_arguments(c)]


# calls whose mathematical value is undefined at some extreme input, NaN in the native too
UNDEFINED = {
    "cosine_similarity(predictions, targets)": "optax's default epsilon=0: the cosine of a zero "
                                               "vector is 0/0",
}




def _big(dtype: str) -> float:
    return 1e30 if dtype != "float16" else 3e4


def _tiny(dtype: str) -> float:
    return 1e-30 if dtype != "float16" else 1e-4


def _log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def _extreme_logits(shape: tuple, axis: int = -1) -> np.ndarray:
    """Rows of ±1e4 (the winner at a different class per row), one all-equal row, one of zeros."""
    x = np.moveaxis(np.zeros(shape), axis, -1)
    c = x.shape[-1]
    flat = x.reshape(-1, c)
    for i in range(flat.shape[0]):
        kind = i % 4
        if kind == 0:
            flat[i] = np.where(np.arange(c) == i % c, 1e4, -1e4)
        elif kind == 1:
            flat[i] = 3.7
        elif kind == 2:
            flat[i] = np.where(np.arange(c) % 2 == 0, 1e4, -1e4)
    return np.moveaxis(flat.reshape(x.shape), -1, axis)


def _one_hot_probs(shape: tuple, hot: np.ndarray, axis: int = -1) -> np.ndarray:
    c = shape[axis]
    eye = (np.arange(c) == np.expand_dims(hot, -1)).astype(np.float64)
    return np.moveaxis(eye, -1, axis)


def extreme_inputs(case: Case, dtype: str) -> list:
    """The case's valid inputs with the extreme values of its domain in its first rows."""
    a = [None if x is None else np.array(x, dtype=x.dtype if x.dtype.kind in "iub" else np.float64)
         for x in make_inputs(case, None, "float64")]
    p, t = a[0], a[1]
    big, tiny, d = _big(dtype), _tiny(dtype), case.domain
    if d == "real":
        t[0] = 0.0
        p[0] = np.resize([big, -big, tiny, -tiny], p.shape[1])
        p[1] = t[1]  # zero residual
        t[2] = np.resize([big, -big, tiny, 0.0], t.shape[1])
        p[2] = t[2]  # zero residual at extreme values
    elif d == "positive":
        t[0] = np.resize([big, tiny, 1.0, big], t.shape[1])
        p[0] = np.resize([big, tiny, tiny, 1.0], p.shape[1])
        p[1] = t[1]
    elif d in ("binary_logits", "signed", "class_logits", "class_probs", "ranking", "label_lists"):
        a[0] = _extreme_logits(p.shape)
    elif d in ("seg_binary", "seg_classes"):
        a[0] = _extreme_logits(p.shape, axis=1)
    elif d == "log_probs_labels":
        a[0] = _log_softmax(_extreme_logits(p.shape))
    elif d in ("binary_probs", "masks"):
        # exactly 0 and 1, right (equal to the target) and wrong (its complement)
        right = np.arange(p.size).reshape(p.shape) % 2 == 0
        a[0] = np.where(right, t, 1.0 - t)
    elif d in ("prob_pairs", "probs_labels", "seg_probs"):
        axis = 1 if d == "seg_probs" else -1
        labels = t if t.dtype.kind in "iu" else np.argmax(t, axis=axis)
        c = p.shape[axis]
        hot = np.where(np.arange(labels.size).reshape(labels.shape) % 2 == 0, labels, (labels + 1) % c)
        a[0] = _one_hot_probs(p.shape, hot, axis)
        if d == "prob_pairs":
            a[1] = _one_hot_probs(t.shape, np.argmax(t, axis=-1))
    elif d == "kl":
        a[0] = _log_softmax(_extreme_logits(p.shape))
        t[:, 0] = 0.0
        t /= t.sum(axis=-1, keepdims=True)
    elif d == "counts":
        p[0] = np.resize([80.0, -80.0, 0.0, 30.0], p.shape[1])
        t[0] = 0.0
    elif d == "rates":
        p[0] = np.resize([0.0, big, tiny, 1.0], p.shape[1])
        t[0] = np.resize([0.0, 0.0, 3.0, 0.0], t.shape[1])
    elif d == "gaussian":
        p[0] = t[0] + np.resize([big, 0.0, tiny, 1.0], p.shape[1])
        a[2][0] = np.resize([tiny, big, 1.0, tiny], a[2].shape[1])
    elif d == "vectors":
        p[0] = 0.0  # a zero vector
        p[1] = 1e4 * np.sign(p[1])
        t[1] = p[1]  # identical
        if a[2] is not None and a[2].ndim == 2:
            a[2][2] = 0.0
    elif d == "embeddings":
        p[1] = p[0]  # identical unit vectors
    elif d in CTC_DOMAINS:
        x = np.moveaxis(p, 1, 0) if d in TIME_MAJOR else p  # (N, T, C)
        x[0] = _extreme_logits(x[0].shape)
        if d in ("ctc_torch", "ctc_torch_blank2"):  # log-probabilities
            x[0] = _log_softmax(x[0])
    return a


# ---- moving inputs in a dtype ----------------------------------------------------------------------

def _round_to(a: np.ndarray, dtype: str) -> np.ndarray:
    """``a``'s values as ``dtype`` holds them, in float64 (the reference sees these bits)."""
    if dtype == "bfloat16":
        ml_dtypes = pytest.importorskip("ml_dtypes")
        return a.astype(np.float32).astype(ml_dtypes.bfloat16).astype(np.float64)
    return a.astype(dtype).astype(np.float64)


def _to_backend(backend, a: np.ndarray, dtype: str):
    if a.dtype.kind in "iub":
        return backend.asarray(a)
    if dtype != "bfloat16":
        return backend.asarray(a.astype(dtype))
    x = backend.asarray(a.astype(np.float32))
    if backend.name == "torch":
        import torch

        return x.to(torch.bfloat16)
    if backend.name == "jax":
        import jax.numpy as jnp

        return x.astype(jnp.bfloat16)
    import tensorflow as tf

    return tf.cast(x, tf.bfloat16)


def _as_float64(backend, x) -> np.ndarray:
    """A backend result as float64 NumPy (bfloat16 goes through float32 in its framework)."""
    if _dtype_name(x) == "bfloat16":
        if backend.name == "torch":
            x = x.float()
        elif backend.name == "jax":
            import jax.numpy as jnp

            x = x.astype(jnp.float32)
        else:
            import tensorflow as tf

            x = tf.cast(x, tf.float32)
    return np.asarray(backend.to_numpy(x), dtype=np.float64)


def _dtype_name(x) -> str:
    """``float32`` for NumPy's, torch's, TensorFlow's, JAX's and array-api-strict's spellings."""
    found = re.search(r"b?float\d+", str(getattr(x, "dtype", "")))
    return found.group(0) if found else ""


# ---- the reference -------------------------------------------------------------------------------------

_REFERENCE: dict = {}


def _module(case: Case):
    return importlib.import_module(POLYLOSS_MODULES[case.convention])


def _fn(case: Case, slots: list[bool]):
    module = _module(case)

    def fn(*xs):
        it = iter(xs)
        return case.call(module, *[next(it) if s else None for s in slots])

    return fn


def reference(case: Case, dtype: str) -> tuple[list, np.ndarray, np.ndarray | None]:
    """``(inputs rounded to dtype in float64, value, torch float64 gradient or None)``."""
    key = (case.convention, case.label, dtype)
    if key not in _REFERENCE:
        rounded = [x if x is None or x.dtype.kind in "iub" else _round_to(x, dtype)
                   for x in extreme_inputs(case, dtype)]
        slots = [x is not None for x in rounded]
        present = [x for x in rounded if x is not None]
        with np.errstate(all="ignore"):
            value = np.asarray(_fn(case, slots)(*present), dtype=np.float64)
        grad = None
        if "torch" in INSTALLED_NAMES:
            from polyloss.parity.backends import get_backend

            try:
                _, grad = get_backend("torch").value_and_grad(_fn(case, slots), present, 0)
            except Exception:  # a call torch cannot differentiate: no gradient reference
                grad = None
        _REFERENCE[key] = (rounded, value, grad)
    return _REFERENCE[key]


def _check(case: Case, backend, dtype: str) -> list[str]:
    where = f"{case.convention}:{case.label} on {backend.name} {dtype}"
    rounded, ref, ref_grad = reference(case, dtype)
    slots = [x is not None for x in rounded]
    present = [x for x in rounded if x is not None]
    xs = [_to_backend(backend, x, dtype) for x in present]
    fn = _fn(case, slots)
    found = []
    grad = None
    try:
        if backend.differentiable:
            out, grad = _value_and_grad(backend, fn, xs)
        else:
            out = fn(*xs)
        if case.convention == "polyloss" and _dtype_name(out) != dtype:
            found.append(f"{where}: returned dtype {_dtype_name(out)}")
        value = _as_float64(backend, out)
    except Exception as exc:
        return [f"{where}: raised {type(exc).__name__}: {str(exc)[:200]}"]
    if value.shape != ref.shape and value.size == ref.size:
        value = value.reshape(ref.shape)
    if case.label in UNDEFINED:  # NaN in the native too: only where the reference is
        same = np.isnan(ref) == np.isnan(value)
        return found + ([] if same.all() else [f"{where}: NaN at other places than the reference"])
    found += _compare_finiteness(where, value, ref, dtype)
    # a mirror reproduces its native's rounding (optax's logsumexp - logit in the input dtype
    # loses digits at ±1e4), compared with the native by the parity matrix; canonical values
    # are compared with the float64 reference here
    if not found and case.convention == "polyloss":
        n = int(rounded[0].size)
        tol = tolerance("float32" if dtype in ("float16", "bfloat16") else dtype, n)
        if dtype in ("float16", "bfloat16"):  # the result is rounded once to the dtype
            tol += float(np.finfo(np.float16).eps if dtype == "float16" else 2.0 ** -8)
        ok = np.isfinite(ref) & np.isfinite(value)
        floor = max(case.term_scale, _smallest_normal(dtype) / tol)
        err = relative_error(value[ok], ref[ok], floor)
        if err > tol:
            found.append(f"{where}: value off by {err:.3g} (relative, tolerance {tol:.3g})")
    if grad is not None and ref_grad is not None:
        g = np.asarray(grad, dtype=np.float64)
        # the gradient comes back in the input's dtype: finite where torch float64's fits it
        with np.errstate(invalid="ignore"):
            fits = np.isfinite(ref_grad) & (np.abs(ref_grad) <= _largest(dtype) / 2)
        bad = fits & ~np.isfinite(g)
        if bad.any():
            found.append(f"{where}: non-finite gradient at {np.argwhere(bad)[:4].tolist()} where "
                         f"torch float64's is finite ({ref_grad[bad][:4]})")
    return found


def _smallest_normal(dtype: str) -> float:
    return float(np.finfo(np.float16).smallest_normal) if dtype == "float16" else float(
        np.finfo(np.float32).smallest_normal) if dtype in ("bfloat16", "float32") else float(
        np.finfo(np.float64).smallest_normal)


def _largest(dtype: str) -> float:
    if dtype == "bfloat16":
        return 3.3895313892515355e38
    return float(np.finfo(dtype).max)


def _compare_finiteness(where: str, value: np.ndarray, ref: np.ndarray, dtype: str) -> list[str]:
    if value.shape != ref.shape:
        return [f"{where}: shape {value.shape}, reference {ref.shape}"]
    with np.errstate(invalid="ignore"):
        fits = np.isfinite(ref) & (np.abs(ref) <= _largest(dtype))
    out = []
    if np.isnan(ref).any():
        at = np.argwhere(np.isnan(ref))[:4].tolist()
        out.append(f"{where}: the float64 reference itself is NaN at {at}")
    lost = fits & ~np.isfinite(value)
    if lost.any():
        out.append(f"{where}: {value[lost][:4]} where the reference is {ref[lost][:4]}")
    inf = np.isinf(ref)
    if (inf & (value != ref)).any():
        out.append(f"{where}: {value[inf][:4]} where the reference is {ref[inf][:4]} (infinite)")
    return out


def _value_and_grad(backend, fn, xs):
    """The result (in the backend's array type) and the float64 gradient of its sum w.r.t. the
    first input, on arrays already moved."""
    name = backend.name
    if name == "torch":
        import torch

        x0 = xs[0].detach().requires_grad_(True)
        out = fn(x0, *xs[1:])
        (g,) = torch.autograd.grad(out.double().sum(), x0, allow_unused=True)
        g = torch.zeros_like(x0) if g is None else g
        return out.detach(), g.double().numpy()
    if name == "jax":
        import jax
        import jax.numpy as jnp

        def total(x0):
            out = fn(x0, *xs[1:])
            return jnp.sum(out.astype(jnp.float64)), out

        (_, out), g = jax.value_and_grad(total, has_aux=True)(xs[0])
        return out, np.asarray(g.astype(jnp.float64))
    if name == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(xs[0])
            out = fn(*xs)
            total = tf.reduce_sum(tf.cast(out, tf.float64))
        g = tape.gradient(total, xs[0])
        g = tf.zeros_like(xs[0]) if g is None else g
        return out, tf.cast(g, tf.float64).numpy()
    import mxnet as mx
    from mxnet import autograd

    with mx.util.np_shape(True):
        x0 = xs[0]
        x0.attach_grad()
        with autograd.record():
            out = fn(x0, *xs[1:])
            total = out.sum() if out.ndim else out
        total.backward()
        return out, x0.grad.asnumpy().astype(np.float64)


@pytest.mark.parametrize("dtype", DTYPES)
def test_extremes(backend, dtype):
    if dtype not in DTYPES_OF[backend.name]:
        pytest.skip(f"{backend.name} has no {dtype}")
    if dtype == "bfloat16":
        pytest.importorskip("ml_dtypes")
    cases = one_canonical_per_family(CASES) if backend.name in SLOW_BACKENDS else CASES
    found = []
    for case in cases:
        found += _check(case, backend, dtype)
    assert not found, f"{len(found)} of {len(cases)} calls:\n" + "\n".join(found)


# ---- infinite by the mathematics -----------------------------------------------------------------

def _inf_calls():
    """``(name, call, inputs, positions where the loss is +inf)``, built by hand."""
    t = np.array([0.0, 1.0, 2.0, 0.0])
    p = np.array([1.0, 1.0, 1.0, 0.0])
    yield ("mape(target 0, epsilon=0)", lambda x, y: polyloss.mape(x, y, reduction="none"), [p, t],
           # 100·|t - p|/|t|: +inf at t = 0 with p != 0; 0/0 at t = p = 0 is NaN (undefined)
           np.array([True, False, False, False]), np.array([False, False, False, True]))
    probs, y = np.array([0.0, 1.0, 0.5, 0.0]), np.array([1.0, 0.0, 1.0, 0.0])
    yield ("binary_cross_entropy(log_clamp=None)",
           lambda x, z: polyloss.binary_cross_entropy(x, z, log_clamp=None, reduction="none"),
           [probs, y], np.array([True, True, False, False]), np.zeros(4, bool))
    logq = np.log(np.array([[0.0, 0.5, 0.5], [0.2, 0.3, 0.5]]))
    pt = np.array([[0.5, 0.5, 0.0], [0.0, 0.5, 0.5]])
    yield ("kl_div(q = 0 where p > 0)", lambda x, z: polyloss.kl_div(x, z, reduction="none"),
           [logq, pt], np.array([True, False]), np.zeros(2, bool))


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_infinite_exactly_where_the_mathematics_says(backend, dtype):
    if dtype not in DTYPES_OF[backend.name]:
        pytest.skip(f"{backend.name} has no {dtype}")
    for name, call, inputs, inf_at, nan_at in _inf_calls():
        with np.errstate(divide="ignore"):
            xs = [backend.asarray(np.asarray(a, dtype=dtype)) for a in inputs]
        got = np.asarray(backend.to_numpy(call(*xs)), dtype=np.float64)
        assert np.all(np.isposinf(got[inf_at])), f"{name}: {got}"
        assert np.all(np.isnan(got[nan_at])), f"{name}: {got}"
        assert np.all(np.isfinite(got[~inf_at & ~nan_at])), f"{name}: {got}"

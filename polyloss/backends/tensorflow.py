"""Array API namespace for TensorFlow tensors (eager, ``tf.Variable``, symbolic in ``tf.function``).

array-api-compat does not serve TensorFlow, so this module provides the subset of the
standard that polyloss's core and reductions use, over raw ``tf.*`` ops (faster than
``tf.experimental.numpy`` and with no global NumPy behaviour switch). TensorFlow
operators refuse mixed dtypes, so binary functions here promote explicitly following
the standard's rules; core code promotes once at entry and then uses Python scalars.
"""

from __future__ import annotations

import builtins
import math
from typing import Any

import numpy as np
import tensorflow as tf

__array_api_version__ = "2023.12"

bool = tf.bool  # noqa: A001 - Array API name
int8, int16, int32, int64 = tf.int8, tf.int16, tf.int32, tf.int64
uint8 = tf.uint8
float16, bfloat16, float32, float64 = tf.float16, tf.bfloat16, tf.float32, tf.float64
FLOAT_DTYPES = frozenset((tf.float16, tf.bfloat16, tf.float32, tf.float64))

e, pi, inf, nan = math.e, math.pi, math.inf, math.nan


def device_of(x: Any) -> str:
    """Device string of a tensor ('' for symbolic tensors, which have none yet)."""
    try:
        return x.device
    except (AttributeError, RuntimeError):
        return ""


stop_gradient = tf.stop_gradient


def values_known(x: Any) -> bool:
    """Values can be read (eager), not inside a ``tf.function`` trace."""
    return tf.executing_eagerly()


def host_values(x: Any) -> Any:
    """An eager tensor in host memory as a NumPy array (``None`` on another device)."""
    if "CPU" not in device_of(x):
        return None
    return x.numpy()


def _tensor(x: Any, dtype: Any = None) -> tf.Tensor:
    if isinstance(x, (tf.Tensor, tf.Variable)):
        return x if dtype is None or x.dtype == dtype else tf.cast(x, dtype)
    return tf.convert_to_tensor(x, dtype=dtype)


# ---- dtypes -------------------------------------------------------------------------

def isdtype(dtype: Any, kind: Any) -> bool:
    dtype = tf.as_dtype(dtype)
    if isinstance(kind, tuple):
        return builtins.any(isdtype(dtype, k) for k in kind)
    if kind == "bool":
        return dtype == tf.bool
    if kind == "signed integer":
        return dtype.is_integer and not dtype.is_unsigned
    if kind == "unsigned integer":
        return dtype.is_integer and dtype.is_unsigned
    if kind == "integral":
        return dtype.is_integer
    if kind == "real floating":
        return dtype.is_floating
    if kind == "complex floating":
        return dtype.is_complex
    if kind == "numeric":
        return dtype.is_integer or dtype.is_floating or dtype.is_complex
    return dtype == tf.as_dtype(kind)


def result_type(*arrays_and_dtypes: Any) -> tf.DType:
    dtypes = []
    for a in arrays_and_dtypes:
        if isinstance(a, (tf.DType, np.dtype, type)):
            dtypes.append(tf.as_dtype(a))
        elif hasattr(a, "dtype"):
            dtypes.append(tf.as_dtype(a.dtype))
    if not dtypes:
        raise TypeError("result_type needs at least one array or dtype")
    out = dtypes[0]
    for d in dtypes[1:]:
        out = _promote(out, d)
    return out


def _promote(a: tf.DType, b: tf.DType) -> tf.DType:
    if a == b:
        return a
    if a.is_floating and b.is_floating:
        if {a, b} == {tf.float16, tf.bfloat16}:
            return tf.float32
        return a if a.size > b.size else b
    return tf.as_dtype(np.result_type(a.as_numpy_dtype, b.as_numpy_dtype))


class finfo:  # noqa: N801 - Array API name
    def __init__(self, dtype: Any):
        info = np.finfo(tf.as_dtype(dtype).as_numpy_dtype)
        self.bits, self.eps = info.bits, float(info.eps)
        self.max, self.min = float(info.max), float(info.min)
        self.smallest_normal = float(info.smallest_normal)
        self.dtype = tf.as_dtype(dtype)


def astype(x: Any, dtype: Any, /, *, copy: bool = True, device: Any = None) -> tf.Tensor:
    return _tensor(x, None) if x.dtype == dtype else tf.cast(x, dtype)


def asarray(obj: Any, /, *, dtype: Any = None, device: Any = None, copy: Any = None) -> tf.Tensor:
    if device:
        with tf.device(device):
            return _tensor(obj, dtype)
    return _tensor(obj, dtype)


def full(shape: Any, fill_value: Any, *, dtype: Any = None, device: Any = None) -> tf.Tensor:
    dtype = dtype or (tf.float32 if isinstance(fill_value, float) else None)
    if device:
        with tf.device(device):
            return tf.fill(shape, tf.constant(fill_value, dtype=dtype))
    return tf.fill(shape, tf.constant(fill_value, dtype=dtype))


def zeros(shape: Any, *, dtype: Any = None, device: Any = None) -> tf.Tensor:
    return full(shape, 0.0, dtype=dtype or tf.float32, device=device)


def ones(shape: Any, *, dtype: Any = None, device: Any = None) -> tf.Tensor:
    return full(shape, 1.0, dtype=dtype or tf.float32, device=device)


def zeros_like(x: Any, /, *, dtype: Any = None, device: Any = None) -> tf.Tensor:
    return tf.zeros_like(x, dtype=dtype)


def full_like(x: Any, /, fill_value: Any, *, dtype: Any = None, device: Any = None) -> tf.Tensor:
    x = _tensor(x)
    return tf.fill(tf.shape(x), tf.constant(fill_value, dtype=dtype or x.dtype))


def ones_like(x: Any, /, *, dtype: Any = None, device: Any = None) -> tf.Tensor:
    return tf.ones_like(x, dtype=dtype)


# ---- elementwise ----------------------------------------------------------------------

abs = tf.math.abs  # noqa: A001
sign = tf.math.sign
sqrt = tf.math.sqrt
square = tf.math.square
exp = tf.math.exp
expm1 = tf.math.expm1
log = tf.math.log
log1p = tf.math.log1p
floor = tf.math.floor


def log2(x: Any, /) -> tf.Tensor:
    return tf.math.log(x) / tf.constant(math.log(2.0), dtype=x.dtype)


tanh = tf.math.tanh
isnan = tf.math.is_nan
isinf = tf.math.is_inf
isfinite = tf.math.is_finite
logical_not = tf.math.logical_not
negative = tf.math.negative


def _binary(fn):
    def op(x1: Any, x2: Any, /) -> tf.Tensor:
        x1, x2 = _promote_pair(x1, x2)
        return fn(x1, x2)

    op.__name__ = fn.__name__
    return op


def _promote_pair(x1: Any, x2: Any) -> tuple[Any, Any]:
    scalar1 = isinstance(x1, (int, float, builtins.bool))
    scalar2 = isinstance(x2, (int, float, builtins.bool))
    if scalar1 and scalar2:
        return tf.constant(x1), tf.constant(x2)
    if scalar1:
        return tf.constant(x1, dtype=x2.dtype), x2
    if scalar2:
        return x1, tf.constant(x2, dtype=x1.dtype)
    if x1.dtype != x2.dtype:
        dt = _promote(x1.dtype, x2.dtype)
        return tf.cast(x1, dt), tf.cast(x2, dt)
    return x1, x2



add = _binary(tf.math.add)
subtract = _binary(tf.math.subtract)
multiply = _binary(tf.math.multiply)
divide = _binary(tf.math.truediv)
pow = _binary(tf.math.pow)  # noqa: A001
maximum = _binary(tf.math.maximum)
minimum = _binary(tf.math.minimum)
equal = _binary(tf.math.equal)
not_equal = _binary(tf.math.not_equal)
less = _binary(tf.math.less)
less_equal = _binary(tf.math.less_equal)
greater = _binary(tf.math.greater)
greater_equal = _binary(tf.math.greater_equal)
logical_and = tf.math.logical_and
logical_or = tf.math.logical_or


def logaddexp(x1: Any, x2: Any, /) -> tf.Tensor:
    x1, x2 = _promote_pair(x1, x2)
    m = tf.math.maximum(x1, x2)
    m = tf.where(tf.math.is_finite(m), m, tf.zeros_like(m))
    return m + tf.math.log(tf.math.exp(x1 - m) + tf.math.exp(x2 - m))


def where(condition: Any, x1: Any, x2: Any, /) -> tf.Tensor:
    x1, x2 = _promote_pair(x1, x2)
    return tf.where(condition, x1, x2)


def clip(x: Any, /, min: Any = None, max: Any = None) -> tf.Tensor:  # noqa: A002
    if min is not None:
        x = maximum(x, min)
    if max is not None:
        x = minimum(x, max)
    return x


# ---- shapes ---------------------------------------------------------------------------

def reshape(x: Any, /, shape: Any, *, copy: Any = None) -> tf.Tensor:
    return tf.reshape(x, shape)


def expand_dims(x: Any, /, *, axis: int = 0) -> tf.Tensor:
    return tf.expand_dims(x, axis)


def squeeze(x: Any, /, axis: Any) -> tf.Tensor:
    return tf.squeeze(x, axis)


def broadcast_to(x: Any, /, shape: Any) -> tf.Tensor:
    return tf.broadcast_to(x, shape)


def permute_dims(x: Any, /, axes: Any) -> tf.Tensor:
    return tf.transpose(x, axes)


def concat(arrays: Any, /, *, axis: int = 0) -> tf.Tensor:
    return tf.concat(list(arrays), axis)


def unstack(x: Any, /, *, axis: int = 0) -> tuple:
    return tuple(tf.unstack(x, axis=axis))


def stack(arrays: Any, /, *, axis: int = 0) -> tf.Tensor:
    return tf.stack(list(arrays), axis)


# ---- reductions -----------------------------------------------------------------------

def _axis(axis: Any) -> Any:
    return list(axis) if isinstance(axis, tuple) else axis


def sum(x: Any, /, *, axis: Any = None, dtype: Any = None, keepdims: bool = False) -> tf.Tensor:  # noqa: A001
    if dtype is not None and x.dtype != dtype:
        x = tf.cast(x, dtype)
    return tf.math.reduce_sum(x, axis=_axis(axis), keepdims=keepdims)


def prod(x: Any, /, *, axis: Any = None, dtype: Any = None, keepdims: bool = False) -> tf.Tensor:
    if dtype is not None and x.dtype != dtype:
        x = tf.cast(x, dtype)
    return tf.math.reduce_prod(x, axis=_axis(axis), keepdims=keepdims)


def mean(x: Any, /, *, axis: Any = None, keepdims: bool = False) -> tf.Tensor:
    return tf.math.reduce_mean(x, axis=_axis(axis), keepdims=keepdims)


def max(x: Any, /, *, axis: Any = None, keepdims: bool = False) -> tf.Tensor:  # noqa: A001
    return tf.math.reduce_max(x, axis=_axis(axis), keepdims=keepdims)


def min(x: Any, /, *, axis: Any = None, keepdims: bool = False) -> tf.Tensor:  # noqa: A001
    return tf.math.reduce_min(x, axis=_axis(axis), keepdims=keepdims)


def any(x: Any, /, *, axis: Any = None, keepdims: bool = False) -> tf.Tensor:  # noqa: A001
    return tf.math.reduce_any(tf.cast(x, tf.bool), axis=_axis(axis), keepdims=keepdims)


def all(x: Any, /, *, axis: Any = None, keepdims: bool = False) -> tf.Tensor:  # noqa: A001
    return tf.math.reduce_all(tf.cast(x, tf.bool), axis=_axis(axis), keepdims=keepdims)


# ---- sorting and cumulative sums ------------------------------------------------------------

def argsort(x: Any, /, *, axis: int = -1, descending: builtins.bool = False,
            stable: builtins.bool = True) -> tf.Tensor:
    """Indices (int64) that sort ``x`` along ``axis``; TensorFlow's sort keeps equal elements
    in their original order in both directions (``top_k`` puts the lower index first)."""
    order = tf.argsort(x, axis=axis, direction="DESCENDING" if descending else "ASCENDING",
                       stable=stable)
    return tf.cast(order, tf.int64)


def sort(x: Any, /, *, axis: int = -1, descending: builtins.bool = False,
         stable: builtins.bool = True) -> tf.Tensor:
    return tf.sort(x, axis=axis, direction="DESCENDING" if descending else "ASCENDING")


def cumulative_sum(x: Any, /, *, axis: int | None = None, dtype: Any = None,
                   include_initial: builtins.bool = False) -> tf.Tensor:
    if axis is None:
        if len(x.shape) != 1:
            raise ValueError("cumulative_sum needs an axis for arrays of more than one dimension")
        axis = 0
    if dtype is not None and x.dtype != dtype:
        x = tf.cast(x, dtype)
    out = tf.math.cumsum(x, axis=axis)
    if include_initial:
        out = tf.concat([tf.zeros_like(tf.math.reduce_sum(x, axis=axis, keepdims=True)), out], axis)
    return out


# ---- linear algebra ---------------------------------------------------------------------

def matmul(x1: Any, x2: Any, /) -> tf.Tensor:
    """``x1 @ x2`` (batched over leading axes) with the Array API's dtype promotion."""
    x1, x2 = _promote_pair(x1, x2)
    return tf.linalg.matmul(x1, x2)


# ---- indexing ---------------------------------------------------------------------------

def arange(start: Any, /, stop: Any = None, step: Any = 1, *, dtype: Any = None,
           device: Any = None) -> tf.Tensor:
    if stop is None:
        start, stop = 0, start
    return tf.range(start, stop, step, dtype=dtype or tf.int64)


def take(x: Any, indices: Any, /, *, axis: int | None = None) -> tf.Tensor:
    """``x``'s slices at the 1-D ``indices`` along ``axis`` (``tf.gather``; ``None``: of the
    flattened ``x``, which the standard allows for 1-D ``x`` only)."""
    if axis is None:
        if len(x.shape) != 1:
            raise ValueError(f"take: axis=None needs a 1-D x, got shape {tuple(x.shape)}")
        axis = 0
    return tf.gather(x, indices, axis=axis % len(x.shape))


def take_along_axis(x: Any, indices: Any, /, *, axis: int = -1) -> tf.Tensor:
    """``x``'s values at ``indices`` along ``axis`` (``tf.gather`` with batch dimensions)."""
    ndim = len(x.shape)
    axis = axis % ndim
    if axis == ndim - 1:
        return tf.gather(x, indices, batch_dims=ndim - 1, axis=ndim - 1)
    perm = [a for a in range(ndim) if a != axis] + [axis]
    inverse = [perm.index(a) for a in range(ndim)]
    out = tf.gather(tf.transpose(x, perm), tf.transpose(indices, perm), batch_dims=ndim - 1,
                    axis=ndim - 1)
    return tf.transpose(out, inverse)


# ---- fused kernels (semantics: polyloss/backends/kernels.py) ----------------------------------

def _last_axis(x: Any, axis: int) -> tuple[Any, int]:
    ndim = len(x.shape)
    axis %= ndim
    if axis == ndim - 1:
        return x, axis
    return tf.transpose(x, [a for a in range(ndim) if a != axis] + [axis]), axis


def _log_softmax(x: Any, axis: int) -> tf.Tensor:
    return tf.nn.log_softmax(x, axis=axis)


def _softmax_cross_entropy(x: Any, labels: Any, axis: int) -> tf.Tensor:
    # one fused kernel: the softmax is its only saved buffer (log_softmax + gather keeps the
    # log-probabilities and densifies the gather's sparse gradient), and it compiles under XLA
    x, _ = _last_axis(x, axis)
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=x)


def _make_kernels() -> Any:
    from polyloss.backends.kernels import Kernels

    return Kernels(log_softmax=_log_softmax, softmax_cross_entropy=_softmax_cross_entropy)


polyloss_kernels = _make_kernels()

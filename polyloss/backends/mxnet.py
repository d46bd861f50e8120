"""Array API namespace for MXNet 1.9 arrays (``mx.np.ndarray`` and the classic ``mx.nd.NDArray``).

array-api-compat does not serve MXNet, so this module provides the subset of the standard
that polyloss's core and reductions use, over ``mx.np``. Classic ``mx.nd.NDArray`` inputs
(what Gluon code passes) are viewed as ``mx.np.ndarray`` (``as_np_ndarray`` shares memory
and the autograd record) and results are turned back into ``NDArray``.

MXNet 1.9.1 uses ``numpy.bool``, which NumPy removed in 1.24; right before importing mxnet
this module sets ``numpy.bool = numpy.bool_`` (the value NumPy 2 itself defines), only if it
is missing. That is polyloss's only import-time side effect, and it happens only when an
MXNet array is passed (or this module is imported). Computations run inside
``mx.util.np_shape(True)`` so that 0-d and zero-size arrays have NumPy shape semantics; that
scope is thread-local and restored on exit (no ``npx.set_np()`` behind the user's back).
"""

from __future__ import annotations

import builtins
import math
from typing import Any

import numpy as _onp

if "bool" not in _onp.__dict__:  # MXNet 1.9.1 still uses numpy.bool (removed in NumPy 1.24)
    _onp.bool = _onp.bool_

import mxnet as mx  # noqa: E402
from mxnet import numpy as mnp  # noqa: E402

__array_api_version__ = "2023.12"

bool = _onp.bool_  # noqa: A001 - Array API name
int8, int32, int64, uint8 = _onp.int8, _onp.int32, _onp.int64, _onp.uint8
float16, float32, float64 = _onp.float16, _onp.float32, _onp.float64
FLOAT_DTYPES = frozenset(_onp.dtype(t) for t in (float16, float32, float64))
LOW_FLOAT_DTYPES = frozenset((_onp.dtype(float16),))

e, pi, inf, nan = math.e, math.pi, math.inf, math.nan


def is_legacy_ndarray_type(t: type) -> builtins.bool:
    return issubclass(t, mx.nd.NDArray) and not issubclass(t, mnp.ndarray)


def is_numpy_ndarray_type(t: type) -> builtins.bool:
    return issubclass(t, mnp.ndarray)


def to_numpy_ndarray(x: Any) -> Any:
    """View a classic NDArray as ``mx.np.ndarray`` (no copy; autograd record kept)."""
    if isinstance(x, mx.nd.NDArray) and not isinstance(x, mnp.ndarray):
        return x.as_np_ndarray()
    return x


def to_legacy_ndarray(x: Any) -> Any:
    return x.as_nd_ndarray() if isinstance(x, mnp.ndarray) else x


def stop_gradient(x: Any) -> Any:
    return x.detach()


def host_values(x: Any) -> Any:
    """An array in host memory as a NumPy array (one engine synchronisation; ``None`` for an
    array on another device)."""
    if x.ctx.device_type != "cpu":
        return None
    return x.asnumpy()


def shape_scope():
    return mx.util.np_shape(True)


def device_of(x: Any) -> Any:
    return x.ctx


# ---- dtypes -------------------------------------------------------------------------

def isdtype(dtype: Any, kind: Any) -> builtins.bool:
    dtype = _onp.dtype(dtype)
    if isinstance(kind, tuple):
        return builtins.any(isdtype(dtype, k) for k in kind)
    kinds = {
        "bool": "b", "signed integer": "i", "unsigned integer": "u", "integral": "iu",
        "real floating": "f", "complex floating": "c", "numeric": "iufc",
    }
    if isinstance(kind, str):
        return dtype.kind in kinds[kind]
    return dtype == _onp.dtype(kind)


def result_type(*arrays_and_dtypes: Any) -> Any:
    return _onp.result_type(*(getattr(a, "dtype", a) for a in arrays_and_dtypes))


finfo = _onp.finfo


def astype(x: Any, dtype: Any, /, *, copy: builtins.bool = True, device: Any = None) -> Any:
    return x if (x.dtype == dtype and not copy) else x.astype(dtype)


def asarray(obj: Any, /, *, dtype: Any = None, device: Any = None, copy: Any = None) -> Any:
    if isinstance(obj, mnp.ndarray):
        return obj if dtype is None or obj.dtype == dtype else obj.astype(dtype)
    return mnp.array(obj, dtype=dtype, ctx=device)


def full(shape: Any, fill_value: Any, *, dtype: Any = None, device: Any = None) -> Any:
    return mnp.full(shape, fill_value, dtype=dtype, ctx=device)


def zeros(shape: Any, *, dtype: Any = None, device: Any = None) -> Any:
    return mnp.zeros(shape, dtype=dtype or float32, ctx=device)


def ones(shape: Any, *, dtype: Any = None, device: Any = None) -> Any:
    return mnp.ones(shape, dtype=dtype or float32, ctx=device)


def zeros_like(x: Any, /, *, dtype: Any = None, device: Any = None) -> Any:
    return mnp.zeros_like(x, dtype=dtype)


def full_like(x: Any, /, fill_value: Any, *, dtype: Any = None, device: Any = None) -> Any:
    return mnp.full_like(x, fill_value, dtype=dtype)


def ones_like(x: Any, /, *, dtype: Any = None, device: Any = None) -> Any:
    return mnp.ones_like(x, dtype=dtype)


# ---- elementwise ----------------------------------------------------------------------

abs = mnp.abs  # noqa: A001
sign = mnp.sign
sqrt = mnp.sqrt
square = mnp.square
exp = mnp.exp
expm1 = mnp.expm1
log = mnp.log
log1p = mnp.log1p
log2 = mnp.log2
floor = mnp.floor
tanh = mnp.tanh
isnan = mnp.isnan
isinf = mnp.isinf
isfinite = mnp.isfinite
logical_not = mnp.logical_not
negative = mnp.negative
add = mnp.add
subtract = mnp.subtract
multiply = mnp.multiply
divide = mnp.true_divide
pow = mnp.power  # noqa: A001
maximum = mnp.maximum
minimum = mnp.minimum
equal = mnp.equal
not_equal = mnp.not_equal
less = mnp.less
less_equal = mnp.less_equal
greater = mnp.greater
greater_equal = mnp.greater_equal


def where(condition: Any, x1: Any, x2: Any, /) -> Any:
    # MXNet 1.9.1's where with a Python scalar branch (_npi_where_lscalar/_rscalar) routes
    # the gradient to the wrong elements (found by the parity matrix), so scalars are made
    # arrays first.
    if isinstance(x1, (int, float)):
        x1 = mnp.full_like(x2, x1)
    if isinstance(x2, (int, float)):
        x2 = mnp.full_like(x1, x2)
    shape = _onp.broadcast_shapes(condition.shape, x1.shape, x2.shape)
    if 0 in shape:  # MXNet 1.9.1's where mis-broadcasts zero-size operands (or crashes)
        return mnp.zeros(shape, dtype=result_type(x1, x2), ctx=x1.ctx)
    return mnp.where(condition, x1, x2)


def logical_and(x1: Any, x2: Any, /) -> Any:
    return mnp.multiply(x1.astype(bool), x2.astype(bool)).astype(bool)


def logical_or(x1: Any, x2: Any, /) -> Any:
    return (x1.astype(int32) + x2.astype(int32)) > 0


def logaddexp(x1: Any, x2: Any, /) -> Any:
    m = mnp.maximum(x1, x2)
    m = mnp.where(mnp.isfinite(m), m, 0.0)
    return m + mnp.log(mnp.exp(x1 - m) + mnp.exp(x2 - m))


def clip(x: Any, /, min: Any = None, max: Any = None) -> Any:  # noqa: A002
    if min is not None:
        x = mnp.maximum(x, min)
    if max is not None:
        x = mnp.minimum(x, max)
    return x


# ---- shapes ---------------------------------------------------------------------------

def reshape(x: Any, /, shape: Any, *, copy: Any = None) -> Any:
    return mnp.reshape(x, shape)


def expand_dims(x: Any, /, *, axis: int = 0) -> Any:
    return mnp.expand_dims(x, axis)


def squeeze(x: Any, /, axis: Any) -> Any:
    return mnp.squeeze(x, axis)


def broadcast_to(x: Any, /, shape: Any) -> Any:
    return mnp.broadcast_to(x, shape)


def permute_dims(x: Any, /, axes: Any) -> Any:
    return mnp.transpose(x, axes)


def concat(arrays: Any, /, *, axis: int = 0) -> Any:
    return mnp.concatenate(list(arrays), axis=axis)


def unstack(x: Any, /, *, axis: int = 0) -> tuple:
    if x.dtype == _onp.bool_:
        # split's backward fails on bool arrays ("Unknown type enum 7"), even without a gradient
        index = (slice(None),) * (axis % x.ndim)
        return tuple(x[index + (i,)] for i in range(x.shape[axis]))
    # one split op (its backward is one concat), not one slice per element
    parts = mnp.split(x, x.shape[axis], axis=axis)
    return tuple(mnp.squeeze(part, axis=axis) for part in parts)


def stack(arrays: Any, /, *, axis: int = 0) -> Any:
    return mnp.stack(list(arrays), axis=axis)


# ---- reductions -----------------------------------------------------------------------
# mx.np's sum/mean return NaN for inputs holding two or more infinities (the legacy
# operators return inf), and reducing to a zero-size result leaves MXNet's engine in a
# state that fails at the next synchronisation. Both found by the parity tests; so sums
# and means run on the legacy operators (same memory, autograd kept) and zero-size cases
# are built directly.


def _reduced_shape(x: Any, axis: Any, keepdims: builtins.bool) -> tuple[tuple, tuple]:
    ndim = x.ndim
    if axis is None:
        axes = tuple(range(ndim))
    else:
        axes = tuple(a % ndim for a in (axis if isinstance(axis, tuple) else (axis,)))
    if keepdims:
        shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
    else:
        shape = tuple(d for i, d in enumerate(x.shape) if i not in axes)
    return axes, shape


def _legacy_reduce(op: Any, x: Any, axes: tuple, keepdims: builtins.bool, shape: tuple) -> Any:
    if not axes:  # the legacy operators read axis=() as "every axis"
        return x
    out = op(x.as_nd_ndarray(), axis=axes, keepdims=keepdims).as_np_ndarray()
    return out if tuple(out.shape) == shape else out.reshape(shape)


def sum(x: Any, /, *, axis: Any = None, dtype: Any = None, keepdims: builtins.bool = False) -> Any:  # noqa: A001
    if dtype is not None and x.dtype != dtype:
        x = x.astype(dtype)
    if x.ndim == 0:
        return x
    axes, shape = _reduced_shape(x, axis, keepdims)
    if x.size == 0 or math.prod(shape) == 0:
        return mnp.zeros(shape, dtype=x.dtype, ctx=x.ctx)
    return _legacy_reduce(mx.nd.sum, x, axes, keepdims, shape)


def mean(x: Any, /, *, axis: Any = None, keepdims: builtins.bool = False) -> Any:
    if x.ndim == 0:
        return x
    axes, shape = _reduced_shape(x, axis, keepdims)
    if math.prod(shape) == 0:
        return mnp.zeros(shape, dtype=x.dtype, ctx=x.ctx)
    if x.size == 0:
        return mnp.full(shape, nan, dtype=x.dtype, ctx=x.ctx)
    return _legacy_reduce(mx.nd.mean, x, axes, keepdims, shape)


def prod(x: Any, /, *, axis: Any = None, dtype: Any = None, keepdims: builtins.bool = False) -> Any:
    return mnp.prod(x, axis=axis, dtype=dtype, keepdims=keepdims)


def max(x: Any, /, *, axis: Any = None, keepdims: builtins.bool = False) -> Any:  # noqa: A001
    return mnp.max(x, axis=axis, keepdims=keepdims)


def min(x: Any, /, *, axis: Any = None, keepdims: builtins.bool = False) -> Any:  # noqa: A001
    return mnp.min(x, axis=axis, keepdims=keepdims)


def any(x: Any, /, *, axis: Any = None, keepdims: builtins.bool = False) -> Any:  # noqa: A001
    return mnp.any(x, axis=axis, keepdims=keepdims)


def all(x: Any, /, *, axis: Any = None, keepdims: builtins.bool = False) -> Any:  # noqa: A001
    return mnp.all(x, axis=axis, keepdims=keepdims)


# ---- indexing ---------------------------------------------------------------------------

def arange(start: Any, /, stop: Any = None, step: Any = 1, *, dtype: Any = None,
           device: Any = None) -> Any:
    if stop is None:
        start, stop = 0, start
    return mnp.arange(start, stop, step, dtype=dtype or int64, ctx=device)


def take(x: Any, indices: Any, /, *, axis: int | None = None) -> Any:
    """``x``'s slices at the 1-D ``indices`` along ``axis`` (``None``: of a 1-D ``x``)."""
    if axis is None:
        if x.ndim != 1:
            raise ValueError(f"take: axis=None needs a 1-D x, got shape {tuple(x.shape)}")
        axis = 0
    return mnp.take(x, indices, axis=axis % x.ndim)


def take_along_axis(x: Any, indices: Any, /, *, axis: int = -1) -> Any:
    """``x``'s values at ``indices`` along ``axis`` (both with gradients): ``npx.pick`` for one
    index per position (``indices`` has size 1 along ``axis``), else a ``take`` on the
    flattened array (MXNet 1.9 has no ``take_along_axis``)."""
    axis = axis % x.ndim
    if indices.shape[axis] != 1:
        return _take_along(x, indices, axis)
    if x.ndim == 1:  # pick cannot take a 0-d index: add a leading axis
        picked = mx.npx.pick(x.reshape((1, -1)), indices.reshape((1,)), axis=1, keepdims=True)
        return picked.reshape((1,))
    return mx.npx.pick(x, mnp.squeeze(indices, axis=axis), axis=axis, keepdims=True)


def _take_along(x: Any, indices: Any, axis: int) -> Any:
    if tuple(indices.shape[:axis] + indices.shape[axis + 1:]) != tuple(x.shape[:axis] + x.shape[axis + 1:]):
        raise ValueError("polyloss: take_along_axis needs indices of x's shape except along axis")
    last = x.ndim - 1
    if axis != last:  # gather along the last axis, then move it back
        x, indices = mnp.swapaxes(x, axis, last), mnp.swapaxes(indices, axis, last)
    n, k = x.shape[-1], indices.shape[-1]
    rows = math.prod(x.shape[:-1])
    if rows * k == 0:
        out = mnp.zeros(tuple(indices.shape), dtype=x.dtype, ctx=x.ctx)
    else:
        offsets = mnp.arange(rows, dtype=int64, ctx=x.ctx).reshape((rows, 1)) * n
        flat = (indices.astype(int64).reshape((rows, k)) + offsets).reshape((rows * k,))
        out = mnp.take(x.reshape((rows * n,)), flat).reshape(tuple(indices.shape))
    return mnp.swapaxes(out, axis, last) if axis != last else out


# ---- sorting and cumulative sums ------------------------------------------------------------
# MXNet's argsort is not stable (equal keys come out in any order), which would make the
# gradient at ties depend on the backend; ``argsort`` here breaks ties by position, as the
# stable sorts of the other backends do.


def argsort(x: Any, /, *, axis: int = -1, descending: builtins.bool = False,
            stable: builtins.bool = True) -> Any:
    """Indices (int64) that sort ``x`` along ``axis``; equal elements keep their order."""
    x = x.detach()
    last = x.ndim - 1
    axis = axis % x.ndim
    if axis != last:
        return mnp.swapaxes(argsort(mnp.swapaxes(x, axis, last), descending=descending), axis, last)
    key = -x if descending else x
    order = mnp.argsort(key, axis=last).astype(int64)
    n = x.shape[-1]
    if n < 2 or x.size == 0:
        return order
    # rank the distinct values (ties share a rank), then sort by (rank, position): unique keys
    ordered = _take_along(key, order, last)
    step = (ordered[..., 1:] != ordered[..., :-1]).astype(int64)
    # (MXNet's concatenate and cumsum refuse axis=-1)
    rank = mnp.cumsum(mnp.concatenate([mnp.zeros_like(step[..., :1]), step], axis=last), axis=last)
    tie_order = mnp.argsort((rank * n + order).astype(float64), axis=last).astype(int64)
    return _take_along(order, tie_order, last)


def sort(x: Any, /, *, axis: int = -1, descending: builtins.bool = False,
         stable: builtins.bool = True) -> Any:
    return take_along_axis(x, argsort(x, axis=axis, descending=descending), axis=axis)


def cumulative_sum(x: Any, /, *, axis: int | None = None, dtype: Any = None,
                   include_initial: builtins.bool = False) -> Any:
    if axis is None:
        if x.ndim != 1:
            raise ValueError("cumulative_sum needs an axis for arrays of more than one dimension")
        axis = 0
    if dtype is not None and x.dtype != dtype:
        x = x.astype(dtype)
    axis %= x.ndim  # MXNet's cumsum and concatenate refuse negative axes
    out = mnp.cumsum(x, axis=axis) if x.size else x
    if include_initial:
        shape = tuple(1 if i == axis else d for i, d in enumerate(x.shape))
        out = mnp.concatenate([mnp.zeros(shape, dtype=x.dtype, ctx=x.ctx), out], axis=axis)
    return out


# ---- linear algebra ---------------------------------------------------------------------

def matmul(x1: Any, x2: Any, /) -> Any:
    """``x1 @ x2`` (batched over leading axes), with gradients."""
    return mnp.matmul(x1, x2)


# ---- fused kernels (semantics: polyloss/backends/kernels.py) ----------------------------------
# mx.np's max, exp, sum and mean are slow kernels (4096 x 1000: 10-20 ms each against 1.3 ms
# for a whole npx.log_softmax), so the softmax family runs on npx's fused operators, as Gluon's
# SoftmaxCrossEntropyLoss does.


def _log_softmax(x: Any, axis: int) -> Any:
    # MXNet's float32 (and float16) log_softmax is off by up to 4.4e-6 absolute per entry
    # (docs/conventions.md, gluon-log-softmax-float32); its float64 one is exact: lower
    # precisions run in float64 and round once (more accurate than the generic chain)
    if x.dtype == _onp.float64:
        return mx.npx.log_softmax(x, axis=axis)
    return mx.npx.log_softmax(x.astype(_onp.float64), axis=axis).astype(x.dtype)


def _softmax_cross_entropy(x: Any, labels: Any, axis: int) -> Any:
    axis %= x.ndim
    logp = _log_softmax(x, axis)
    if x.ndim == 1:  # pick cannot take a 0-d index
        return -mx.npx.pick(logp.reshape((1, -1)), labels.reshape((1,)), axis=1).reshape(())
    return -mx.npx.pick(logp, labels, axis=axis)


def _exact_sigma(beta: float) -> float | None:
    """``sqrt(1/beta)`` where it and its square are exact in float32 (beta = 4**k), else None."""
    sigma = math.sqrt(1.0 / beta)
    exact = float(_onp.float32(sigma)) == sigma and sigma * sigma * beta == 1.0
    return sigma if exact and math.frexp(beta)[0] == 0.5 else None


def _make_kernels(reduce_sum: Any, reduce_mean: Any) -> Any:
    """The kernels, reducing with the flavour's own ``sum``/``mean`` (classic NDArrays need
    ``(1,)`` for a full reduction, as everywhere in that namespace)."""
    from polyloss.backends.kernels import Kernels

    def reduced(loss: Any, reduction: str) -> Any:
        if reduction == "none":
            return loss
        return reduce_mean(loss) if reduction == "mean" else reduce_sum(loss)

    def absolute_error(pred: Any, target: Any, reduction: str) -> Any:
        # MXNet's abs has gradient 0 at 0, the generic code's (one operation instead of three)
        return reduced(mnp.abs(pred - target), reduction)

    def smooth_l1(pred: Any, target: Any, beta: float, reduction: str) -> Any:
        # npx.smooth_l1(r, σ): ½(σr)² for |r| < 1/σ², else |r| - ½/σ². With σ² = 1/beta that is
        # smooth L1 bit for bit only where σ is exact (beta a power of 4: 1 is Gluon's default)
        sigma = _exact_sigma(beta)
        if sigma is None:
            return None
        return reduced(mx.npx.smooth_l1(pred - target, scalar=sigma), reduction)

    def huber(pred: Any, target: Any, delta: float, reduction: str) -> Any:
        sigma = _exact_sigma(delta)  # delta·smooth_l1(beta=delta), exact as above
        if sigma is None:
            return None
        loss = mx.npx.smooth_l1(pred - target, scalar=sigma)
        return reduced(loss if delta == 1 else delta * loss, reduction)

    return Kernels(log_softmax=_log_softmax, softmax_cross_entropy=_softmax_cross_entropy,
                   absolute_error=absolute_error, smooth_l1=smooth_l1, huber=huber)


polyloss_kernels = _make_kernels(sum, mean)


# ---- the classic NDArray flavour -------------------------------------------------------------
# Classic NDArrays have no 0-d arrays: a full reduction is shape (1,) (``mx.nd.sum``), and an
# autograd record holding 0-d nodes fails in ``backward()`` outside NumPy shape semantics
# (MXNetError "Shape is unknown", or a crash). So for NDArray inputs the namespace returns
# (1,) wherever the standard would give 0-d: the value a Gluon user gets from ``mx.nd``.


def _legacy_reduction(nd_op: Any, empty: float) -> Any:
    """A reduction that never creates a 0-d node: full reductions are (1,), as ``mx.nd``."""

    def reduce(x: Any, /, *, axis: Any = None, dtype: Any = None,
               keepdims: builtins.bool = False) -> Any:
        if dtype is not None and x.dtype != dtype:
            x = x.astype(dtype)
        if x.ndim == 0:
            return x.reshape((1,))
        axes, shape = _reduced_shape(x, axis, keepdims)
        shape = shape or (1,)
        if math.prod(shape) == 0:
            return mnp.zeros(shape, dtype=x.dtype, ctx=x.ctx)
        if x.size == 0:
            return mnp.full(shape, empty, dtype=x.dtype, ctx=x.ctx)
        return _legacy_reduce(nd_op, x, axes, keepdims, shape)

    reduce.__name__ = nd_op.__name__
    return reduce


def _legacy_full(shape: Any, fill_value: Any, *, dtype: Any = None, device: Any = None) -> Any:
    return full(tuple(shape) or (1,), fill_value, dtype=dtype, device=device)


def _legacy_namespace() -> Any:
    import types

    names = {k: v for k, v in globals().items() if not k.startswith("_")}
    ns = types.SimpleNamespace(**names)
    ns.sum = _legacy_reduction(mx.nd.sum, 0.0)
    ns.mean = _legacy_reduction(mx.nd.mean, nan)
    ns.prod = _legacy_reduction(mx.nd.prod, 1.0)
    ns.max = _legacy_reduction(mx.nd.max, nan)
    ns.min = _legacy_reduction(mx.nd.min, nan)
    ns.full = _legacy_full
    ns.polyloss_kernels = _make_kernels(ns.sum, ns.mean)
    return ns


LEGACY = _legacy_namespace()


# ---- symbols: a polyloss computation as one node of a hybridized Gluon graph -----------------
# MXNet 1.9 symbols carry neither shape nor dtype, and polyloss's losses read both (Gluon's
# reshape-like rule, the axes of a per-sample mean, label checks). So instead of rebuilding every
# loss out of symbol operators, ``call_in_graph`` puts the whole computation in one ``Custom``
# operator: its forward runs the imperative computation (under autograd) on the node's input
# values, its backward replays that record. The cached graph therefore computes exactly what the
# imperative call computes, for every loss, and sees each new input shape at run time.

_GRAPH_FUNCTIONS: dict[str, tuple[Any, builtins.bool]] = {}
_OP_TYPE = "polyloss_call"
_NpSymbol = mx.symbol.numpy._Symbol
_registered = [False]


def _is_floating(x: Any) -> builtins.bool:
    return _onp.dtype(x.dtype).kind == "f"


class _GraphOp(mx.operator.CustomOp):
    """Forward: ``fn`` on the input values; backward: ``fn`` again, recorded, with gradients
    attached only to the inputs the graph wants gradients for (a label cast to integers,
    e.g. for ``pick``, crashes MXNet 1.9.1's backward if it carries a gradient)."""

    def __init__(self, fn: Any, np_arrays: builtins.bool) -> None:
        super().__init__()
        self._fn = fn
        self._np_arrays = np_arrays
        self._train = False

    def _view(self, x: Any) -> Any:
        return x.as_np_ndarray() if self._np_arrays else x

    def forward(self, is_train: Any, req: Any, in_data: Any, out_data: Any, aux: Any) -> None:
        self._train = builtins.bool(is_train)
        with mx.autograd.pause(train_mode=self._train):
            out = self._fn(*(self._view(x) for x in in_data))
        self.assign(out_data[0], req[0], to_legacy_ndarray(out))

    def backward(self, req: Any, out_grad: Any, in_data: Any, out_data: Any, in_grad: Any,
                 aux: Any) -> None:
        # copies: attach_grad and the record must not touch the graph's own buffers
        inputs = [self._view(x.copy()) for x in in_data]
        wanted = [r != "null" and _is_floating(x) for r, x in zip(req, inputs, strict=True)]
        for x, w in zip(inputs, wanted, strict=True):
            if w:
                x.attach_grad()
        if builtins.any(wanted):
            # the recomputation gives the forward's values: same inputs, same operators
            with mx.autograd.record(train_mode=self._train):
                out = self._fn(*inputs)
            mx.autograd.backward([out], [self._view(out_grad[0])])
        for i, (x, w) in enumerate(zip(inputs, wanted, strict=True)):
            if req[i] != "null":
                grad = to_legacy_ndarray(x.grad) if w else mx.nd.zeros_like(in_data[i])
                self.assign(in_grad[i], req[i], grad)


def _register_graph_op() -> None:
    if _registered[0]:
        return

    @mx.operator.register(_OP_TYPE)
    class _GraphOpProp(mx.operator.CustomOpProp):
        def __init__(self, key: str, num_inputs: str) -> None:
            super().__init__(need_top_grad=True)
            self._fn, self._np_arrays = _GRAPH_FUNCTIONS[key]
            self._num_inputs = int(num_inputs)
            self._types: list | None = None

        def list_arguments(self) -> list[str]:
            return [f"input{i}" for i in range(self._num_inputs)]

        def list_outputs(self) -> list[str]:
            return ["output"]

        def infer_type(self, in_type: list) -> tuple:
            self._types = list(in_type)
            return in_type, [in_type[0]], []

        def infer_shape(self, in_shape: list) -> tuple:
            # the output shape is whatever the computation gives on zeros of these shapes
            types = self._types or [float32] * len(in_shape)
            with mx.autograd.pause(), mx.util.np_shape(True):
                probes = [mx.nd.zeros(tuple(s), dtype=t) for s, t in zip(in_shape, types, strict=True)]
                if self._np_arrays:
                    probes = [p.as_np_ndarray() for p in probes]
                out = self._fn(*probes)
            return in_shape, [tuple(out.shape)], []

        def create_operator(self, ctx: Any, in_shapes: Any, in_dtypes: Any) -> _GraphOp:
            return _GraphOp(self._fn, self._np_arrays)

    _registered[0] = True


def call_in_graph(fn: Any, inputs: list, key: str) -> Any:
    """A symbol whose value is ``fn(*values of inputs)`` and whose gradient is ``fn``'s.

    ``inputs`` are classic or NumPy-flavoured symbols (not ``None``); ``fn`` receives arrays of
    the same flavour and returns one array. ``key`` names ``fn`` in a process-wide registry, so
    a graph using it can only be run (or re-bound from JSON) in the process that built it.
    """
    _register_graph_op()
    np_arrays = builtins.any(isinstance(s, _NpSymbol) for s in inputs)
    _GRAPH_FUNCTIONS[key] = (fn, np_arrays)
    legacy = [s.as_nd_ndarray() if isinstance(s, _NpSymbol) else s for s in inputs]
    out = mx.sym.Custom(*legacy, op_type=_OP_TYPE, key=key, num_inputs=str(len(legacy)))
    return out.as_np_ndarray() if np_arrays else out


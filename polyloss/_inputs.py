"""Entry checks shared by the canonical API and every convention mirror.

``prepare`` resolves the backend once, views the inputs in its namespace, checks devices
and dtypes, and promotes prediction and target to one floating compute dtype
(float16/bfloat16 compute in float32 and come back in their own dtype). Shapes are
checked by the callers, because each convention has its own rule.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any, NamedTuple

from polyloss.backends import Backend, backend_of, check_same_device

# Value checks (labels in range, probabilities in [0, 1], variances >= 0, ...) read array
# values, which costs a device-to-host synchronisation per check. ``value_checks(False)``
# turns them off for a block of code; a context variable, so the switch is per thread (and
# per asyncio task) and ends with the block.
_VALUE_CHECKS: contextvars.ContextVar[bool] = contextvars.ContextVar("polyloss_value_checks",
                                                                     default=True)


@contextlib.contextmanager
def value_checks(enabled: bool) -> Iterator[None]:
    """Turn polyloss's checks of array *values* on or off inside a ``with`` block.

    Every loss (canonical, mirrors, front-ends) checks the values of its inputs where they can
    be read: class indices in ``[0, C)`` and whole, probabilities in ``[0, 1]``, variances and
    rates ``>= 0``, ±1 or 0/1 labels where a loss needs them. Each check reads the data back
    (a GPU synchronisation); ``with polyloss.value_checks(False):`` skips them, and an
    invalid value then gives what it gives under ``jax.jit`` (an out-of-range class index makes
    its position's loss NaN; other values are used as they are). Shape, dtype, device and
    argument checks need no values and always run. The setting holds for the current thread
    (and asyncio task) until the block ends; other threads keep their own.
    """
    if not isinstance(enabled, bool):
        raise TypeError(f"polyloss: value_checks(enabled) takes True or False, got {enabled!r}")
    token = _VALUE_CHECKS.set(enabled)
    try:
        yield
    finally:
        _VALUE_CHECKS.reset(token)


def values_checked(backend: Backend, x: Any) -> bool:
    """Whether a value check on ``x`` runs: its values can be read now (not a jit tracer, a
    lazy Dask graph or a torch meta tensor), it has elements, and checks are on."""
    # values_known first: under torch.compile it is False and the context variable is not read
    if not backend.values_known(x) or any(d == 0 for d in x.shape):
        return False
    return _VALUE_CHECKS.get()


def check_probabilities(backend: Backend, x: Any, name: str, *, hint: str = "") -> None:
    """``ValueError`` naming ``name`` if a value lies outside ``[0, 1]`` (NaN passes: it
    propagates into the loss). One reduction and one read per call, in eager mode only."""
    if not values_checked(backend, x):
        return
    xp = backend.xp
    if bool(xp.any(xp.logical_or(x < 0, x > 1))):
        raise ValueError(
            f"polyloss: {name} holds probabilities but has values outside [0, 1]{hint}; its "
            f"values range over [{float(xp.min(x))!r}, {float(xp.max(x))!r}]"
        )


def check_non_negative(backend: Backend, x: Any, name: str, what: str) -> None:
    """``ValueError`` naming ``name`` if a value is negative (eager, value checks on)."""
    if not values_checked(backend, x):
        return
    xp = backend.xp
    if bool(xp.any(x < 0)):
        raise ValueError(f"polyloss: {name} holds {what}, which must be >= 0; got a negative value "
                         f"({float(xp.min(x))!r})")


class Prepared(NamedTuple):
    backend: Backend
    xp: Any
    pred: Any
    target: Any
    weight: Any
    out_dtype: Any  # the dtype results are returned in


_new_tuple = tuple.__new__


def prepare(
    pred: Any,
    target: Any,
    weight: Any = None,
    *,
    names: tuple[str, str, str] = ("pred", "target", "sample_weight"),
    compute_dtype: str | None = None,
    target_takes_pred_dtype: bool = False,
    integer_target: bool = False,
) -> Prepared:
    """Resolve, check and promote ``pred``/``target`` (and an optional weight array).

    ``compute_dtype`` (a dtype name such as ``"float32"``) casts every input to that dtype
    first, as Keras loss objects do with their ``dtype``. ``target_takes_pred_dtype`` casts
    the target to the prediction's dtype instead of promoting both (Keras loss functions).
    """
    backend = backend_of(pred, target, weight, names=names)
    xp = backend.xp
    if backend.to_xp is not None:
        pred, target = backend.to_xp(pred), backend.to_xp(target)
        if weight is not None:
            weight = backend.to_xp(weight)
    _require_array(pred, names[0])
    _require_array(target, names[1])
    check_same_device(backend, (pred, target, weight), names)

    pred_dtype, target_dtype = pred.dtype, target.dtype  # read once: every call pays for them
    if compute_dtype is not None:
        dtype = getattr(xp, compute_dtype)
        _require_float_or_int(backend, pred_dtype, names[0])
        _require_float_or_int(backend, target_dtype, names[1])
        out_dtype = dtype
    else:
        if not backend.is_floating(pred_dtype):
            raise TypeError(
                f"polyloss: {names[0]} must be a floating-point array, got dtype {pred_dtype}"
            )
        if target_takes_pred_dtype:
            _require_float_or_int(backend, target_dtype, names[1])
            dtype = pred_dtype
        elif target_dtype == pred_dtype:
            dtype = pred_dtype
        elif backend.is_floating(target_dtype):
            dtype = xp.result_type(pred, target)
        else:
            _require_float_or_int(backend, target_dtype, names[1])
            dtype = pred_dtype
        out_dtype = dtype
        if _is_low_precision(backend, dtype):
            dtype = xp.float32
    if pred_dtype != dtype:
        pred = xp.astype(pred, dtype)
    if target_dtype != dtype and not (integer_target and not backend.is_floating(target_dtype)):
        target = xp.astype(target, dtype)
    if weight is not None:
        if isinstance(weight, (int, float)):
            weight = xp.asarray(weight, dtype=dtype, device=backend.device(pred))
        elif weight.dtype != dtype:
            _require_float_or_int(backend, weight.dtype, names[2])
            weight = xp.astype(weight, dtype)
    # tuple.__new__ skips the NamedTuple's Python-level __new__ (this runs on every call)
    return _new_tuple(Prepared, (backend, xp, pred, target, weight, out_dtype))


def prepare_extra(p: Prepared, x: Any, name: str, *, dtype: Any = None) -> Any:
    """One more array argument (a class-weight vector, a variance, ``pos_weight``) in the
    call's namespace, device and compute dtype; Python numbers become 0-d arrays."""
    if x is None:
        return None
    xp = p.xp
    dtype = p.pred.dtype if dtype is None else dtype
    if isinstance(x, (int, float)):
        return xp.asarray(x, dtype=dtype, device=p.backend.device(p.pred))
    if p.backend.to_xp is not None:
        x = p.backend.to_xp(x)
    _require_array(x, name)
    check_same_device(p.backend, (p.pred, x), ("pred", name))
    _require_float_or_int(p.backend, x.dtype, name)
    return x if x.dtype == dtype else xp.astype(x, dtype)


def finish(p: Prepared, out: Any) -> Any:
    """Return ``out`` in the caller's dtype and array type."""
    if isinstance(out, tuple):  # LossParts: the normaliser keeps the compute dtype (a count
        total, normalizer = out  # in float16 would round) and gets the caller's array type
        if p.backend.from_xp is not None:
            normalizer = p.backend.from_xp(normalizer)
        return type(out)(finish(p, total), normalizer)
    if out.dtype != p.out_dtype:
        out = p.xp.astype(out, p.out_dtype)
    if p.backend.from_xp is not None:
        out = p.backend.from_xp(out)
    return out


def _is_low_precision(backend: Backend, dtype: Any) -> bool:
    if backend.low_float_dtypes is not None:  # a set lookup: asked on every call
        return dtype in backend.low_float_dtypes
    xp = backend.xp
    # compare with each name that exists (numpy coerces `dtype == None` to float64)
    return any(
        dtype == low for low in (getattr(xp, "float16", None), getattr(xp, "bfloat16", None))
        if low is not None
    )


_ARRAY_TYPES: set = set()  # types seen to have a shape and a dtype (a set lookup per call)


def _require_array(x: Any, name: str) -> None:
    if x.__class__ in _ARRAY_TYPES:
        return
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        raise TypeError(f"polyloss: {name} must be an array, got {type(x).__name__}")
    _ARRAY_TYPES.add(x.__class__)


def _require_float_or_int(backend: Backend, dtype: Any, name: str) -> None:
    xp = backend.xp
    if backend.is_floating(dtype):
        return
    try:
        ok = xp.isdtype(dtype, ("integral", "bool"))
    except (TypeError, ValueError, AttributeError):
        ok = False
    if not ok:
        raise TypeError(f"polyloss: {name} must be a real numeric array, got dtype {dtype}")


def known_shape(x: Any) -> tuple | None:
    """``x``'s shape with unknown dimensions (symbolic ``None``, Dask's NaN) as ``None``;
    ``None`` when even the rank is unknown."""
    try:
        dims = tuple(x.shape)
    except (TypeError, ValueError):  # a TensorShape of unknown rank
        return None
    return tuple(None if d is None or d != d else int(d) for d in dims)


def same_shape(a: Any, b: Any) -> bool:
    """Shapes equal, where an unknown (symbolic) dimension or rank matches anything."""
    sa, sb = known_shape(a), known_shape(b)
    if sa is None or sb is None:
        return True
    if len(sa) != len(sb):
        return False
    return all(x == y or x is None or y is None for x, y in zip(sa, sb, strict=True))


def check_same_shape(a: Any, b: Any, names: tuple[str, str]) -> None:
    """``ValueError`` naming both shapes unless they are equal (no silent broadcasting)."""
    if a.shape == b.shape:  # the common case, without building tuples
        return
    if not same_shape(a, b):
        raise ValueError(
            f"polyloss: {names[0]} has shape {tuple(a.shape)} but {names[1]} has shape "
            f"{tuple(b.shape)}; they must be equal (broadcasting them would silently compute "
            "a different loss)"
        )

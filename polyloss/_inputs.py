"""Entry checks shared by the canonical API and every convention mirror.

``prepare`` resolves the backend once, views the inputs in its namespace, checks devices
and dtypes, and promotes prediction and target to one floating compute dtype
(float16/bfloat16 compute in float32 and come back in their own dtype). Shapes are
checked by the callers, because each convention has its own rule.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from polyloss.backends import Backend, backend_of, check_same_device


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

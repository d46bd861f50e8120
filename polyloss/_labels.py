"""Class-index targets: eager validation and the index dtype.

Labels are checked where their values can be read (eager calls); under ``jax.jit``,
``tf.function`` and ``torch.compile``, and on lazy Dask arrays, they are not, and an
out-of-range label makes its position's loss NaN instead (see ``core.classification.safe_labels``).
"""

from __future__ import annotations

from typing import Any

from polyloss._inputs import values_checked
from polyloss.backends import Backend


def check_class_labels(
    backend: Backend, labels: Any, num_classes: int, ignore_index: int | None, name: str
) -> bool:
    """``ValueError`` naming ``name`` for labels outside ``[0, num_classes)`` (other than
    ``ignore_index``) or, for floating-point labels, values that are not whole numbers.

    Returns whether the labels were read and every one lies in ``[0, num_classes)``: the
    caller then needs no mask for ignored or out-of-range labels (unless ``ignore_index`` is
    itself a class)."""
    if not values_checked(backend, labels):
        return False
    host = backend.host_values(labels)
    if host is not None:  # the same checks in NumPy: one read instead of a dozen operations
        return _check_host_labels(host, num_classes, ignore_index, name)
    xp = backend.xp
    if backend.is_floating(labels.dtype) and bool(xp.any(labels != xp.floor(labels))):
        raise _not_whole(name, num_classes)
    # the range first: two reductions, and all a call with valid labels needs
    if 0 <= float(xp.min(labels)) and float(xp.max(labels)) < num_classes:
        return True
    bad = xp.logical_or(labels < 0, labels >= num_classes)
    if ignore_index is not None:
        bad = xp.logical_and(bad, labels != ignore_index)
    if bool(xp.any(bad)):
        raise _out_of_range(name, num_classes, ignore_index, int(xp.min(labels)), int(xp.max(labels)))
    return False


def _check_host_labels(labels: Any, num_classes: int, ignore_index: int | None, name: str) -> bool:
    import numpy as np

    if labels.dtype.kind == "f" and (labels != np.floor(labels)).any():
        raise _not_whole(name, num_classes)
    lo, hi = labels.min(), labels.max()
    if 0 <= lo and hi < num_classes:
        return True
    bad = (labels < 0) | (labels >= num_classes)
    if ignore_index is not None:
        bad &= labels != ignore_index
    if bad.any():
        raise _out_of_range(name, num_classes, ignore_index, int(lo), int(hi))
    return False


def _not_whole(name: str, num_classes: int) -> ValueError:
    return ValueError(f"polyloss: {name} holds class indices, so its values must be whole "
                      f"numbers in [0, {num_classes}); some are not (or are NaN/inf)")


def _out_of_range(name: str, num_classes: int, ignore_index: int | None, lo: int, hi: int
                  ) -> ValueError:
    ignored = "" if ignore_index is None else f" other than ignore_index={ignore_index}"
    return ValueError(
        f"polyloss: {name} holds class indices outside [0, {num_classes}){ignored} "
        f"(its values range over [{lo}, {hi}])"
    )


def index_dtype(xp: Any) -> Any:
    """The namespace's indexing dtype: int64, or int32 for JAX without 64-bit mode (asking
    JAX for int64 there only warns and truncates)."""
    info = getattr(xp, "__array_namespace_info__", None)
    if info is not None:
        try:
            return info().default_dtypes()["indexing"]
        except (AttributeError, KeyError, TypeError):
            pass
    return xp.int64


# What a floating label that is not a whole number becomes where it was not refused (under
# jit, on lazy arrays, with value checks off): an index outside every [0, C) and no ignore
# value in use, so its position's loss is NaN instead of the truncated class's.
NOT_A_CLASS = -(2**30)


def as_index(backend: Backend, labels: Any, *, checked: bool = False) -> Any:
    """Labels in the indexing dtype (torch's gather and TensorFlow's take only int64/int32
    indices; floating, unsigned and narrow integer labels are cast). A floating label that is
    not a whole number (NaN, inf, 2.5) becomes ``NOT_A_CLASS`` rather than a truncated index;
    ``checked=True`` says the labels were read and are whole numbers in range (see
    :func:`check_class_labels`), so a plain cast does."""
    xp = backend.xp
    dtype = backend.index_dtype if backend.index_dtype is not None else index_dtype(xp)
    if not checked and backend.is_floating(labels.dtype):
        whole = xp.logical_and(labels == xp.floor(labels), xp.abs(labels) < 2.0**30)
        labels = xp.where(whole, labels, float(NOT_A_CLASS))
    return labels if labels.dtype == dtype else xp.astype(labels, dtype)


def is_integer_labels(backend: Backend, target: Any) -> bool:
    return not backend.is_floating(target.dtype)

"""Reductions shared by every loss and every convention.

``reduce_loss`` turns an unreduced loss into ``none`` / ``sum`` / ``mean`` with an optional
``sample_weight`` and an explicit normaliser for weighted means. Conventions build theirs
(Keras's ``sum_over_batch_size``, Gluon's per-sample mean, torch's weighted means) from the
helpers here.

Global normalisation (distributed training, gradient accumulation, out-of-core data) is
here too, once for every canonical loss: ``reduction="parts"`` returns a mean's two parts,
:class:`LossParts` ``(total, normalizer)``, and ``normalizer=<number or 0-d array>`` divides
by a normaliser computed elsewhere (summed over replicas or micro-batches) instead of the
local one (:func:`check_normalizer`, :func:`normalized`).
"""

from __future__ import annotations

import math
import numbers
from typing import Any, NamedTuple

from polyloss._inputs import known_shape
from polyloss.backends import backend_of, device_of

__all__ = [
    "REDUCTIONS",
    "NORMALIZERS",
    "reduce_loss",
    "align_weight",
    "static_size",
    "mean_or_nan",
    "mean_last_axis",
    "check_choice",
    "LossParts",
    "PARTS",
    "check_reduction",
    "check_normalizer",
    "normalized",
]

REDUCTIONS = ("none", "sum", "mean")
NORMALIZERS = ("count", "sum_of_weights")


def check_choice(name: str, value: Any, allowed: tuple) -> None:
    """``ValueError`` naming the argument unless ``value`` is one of ``allowed``."""
    if value.__class__ is str and value in allowed:  # every call: the valid case first
        return
    if not isinstance(value, (str, type(None))) or value not in allowed:
        raise ValueError(
            f"polyloss: invalid {name}={value!r}; expected one of "
            + ", ".join(repr(a) for a in allowed)
        )


PARTS = "parts"


class LossParts(NamedTuple):
    """A mean's two parts, as ``reduction="parts"`` returns them: ``mean = total / normalizer``.

    ``total`` is ``Σ w·loss`` over the positions that count (ignored positions add 0);
    ``normalizer`` is what ``reduction="mean"`` divides it by under the loss's ``normalizer``
    rule (the element count, the count of positions not ignored, or the summed weights), a
    0-d array in the loss's compute dtype (float32 for float16/bfloat16 inputs, so that a count
    stays exact). Both add up over any split of the batch (replicas, micro-batches, chunks):
    ``Σ totals / Σ normalizers`` is the mean over the whole batch, and
    ``loss(..., normalizer=Σ normalizers)`` is one part's share of it.
    """

    total: Any
    normalizer: Any


def check_reduction(reduction: Any, allowed: tuple) -> None:
    """``ValueError`` unless ``reduction`` is one of ``allowed`` or ``"parts"``."""
    if reduction.__class__ is str and (reduction in allowed or reduction == PARTS):
        return
    check_choice("reduction", reduction, (*allowed, PARTS))


def check_normalizer(normalizer: Any, rules: tuple, reduction: str) -> None:
    """``normalizer`` is a rule name from ``rules``, or, with ``reduction="mean"``, the value
    to divide by: a number ``>= 0`` or a 0-d array (of the loss's framework)."""
    if normalizer.__class__ is str and normalizer in rules:
        return
    if normalizer is None or isinstance(normalizer, str):
        check_choice("normalizer", normalizer, rules)
        return
    expected = ("one of " + ", ".join(repr(r) for r in rules)
                + ", or the normaliser's value (a number >= 0 or a 0-d array)")
    if isinstance(normalizer, bool) or not (
        isinstance(normalizer, numbers.Real) or hasattr(normalizer, "shape")
    ):
        raise TypeError(f"polyloss: normalizer must be {expected}, got {type(normalizer).__name__}")
    if isinstance(normalizer, numbers.Real):
        if not 0 <= float(normalizer) < math.inf:
            raise ValueError(f"polyloss: normalizer must be {expected}, got {normalizer!r}")
    elif known_shape(normalizer) != ():
        raise ValueError(f"polyloss: a normalizer array must be 0-d, got shape "
                         f"{tuple(normalizer.shape)}")
    if reduction != "mean":
        raise ValueError(f"polyloss: a normalizer value divides reduction='mean' only, got "
                         f"reduction={reduction!r} (reduction='parts' reports the local "
                         "normaliser; pass a rule name with it)")


def normalized(
    xp: Any, total: Any, reduction: str, normalizer: Any, local_normalizer: Any, *,
    fill: float = math.nan,
) -> Any:
    """The end of every mean: ``total / normalizer``, or the two parts.

    ``local_normalizer`` is the rule's value on this call's positions (an ``int`` when known
    statically, else a 0-d array); a ``normalizer`` value replaces it in the division. A
    zero normaliser gives ``fill`` (0 or NaN, with a zero gradient). ``"parts"`` returns
    :class:`LossParts` with the local normaliser as a 0-d array.
    """
    if reduction == PARTS:
        if isinstance(local_normalizer, int):  # total's dtype and device, no gradient
            local_normalizer = xp.full_like(total, float(local_normalizer))
        return LossParts(total, local_normalizer)
    denom = local_normalizer
    if not isinstance(normalizer, str):
        denom = _normalizer_value(xp, total, normalizer)
    if isinstance(denom, (int, float)):
        # a static zero: the (zero) total times the fill keeps the autograd graph
        return total * fill if denom == 0 else total / denom
    empty = denom == 0
    return xp.where(empty, fill, total / xp.where(empty, 1.0, denom))


def _normalizer_value(xp: Any, total: Any, normalizer: Any) -> Any:
    """A given normaliser as a Python float, or a 0-d array of ``total``'s namespace and dtype."""
    if isinstance(normalizer, numbers.Real):  # Python and NumPy scalars
        return float(normalizer)
    backend = backend_of(total, normalizer, names=("the loss", "normalizer"))
    if backend.to_xp is not None:
        normalizer = backend.to_xp(normalizer)
    if normalizer.dtype != total.dtype:
        normalizer = xp.astype(normalizer, total.dtype)
    return normalizer


def static_size(x: Any) -> int | None:
    """Number of elements when every dimension is known statically, else ``None``."""
    shape = known_shape(x)
    if shape is None or None in shape:
        return None
    return math.prod(shape)


def _shape(x: Any) -> tuple:
    shape = known_shape(x)
    if shape is None:
        raise ValueError("polyloss: a weight or loss of unknown rank cannot be aligned")
    return shape


def align_weight(
    xp: Any, weight: Any, loss_shape: tuple, name: str = "sample_weight", *, prefix: bool = True
) -> Any:
    """Shape ``weight`` to multiply a loss of ``loss_shape`` without changing that shape.

    Accepted: the loss's own shape; a leading prefix of it (per-sample weights of shape
    ``(N,)`` for a loss of ``(N, D)`` get trailing axes added); or any shape that
    broadcasts to the loss's shape under the standard's rules. Anything else, in
    particular a weight that would enlarge the loss by broadcasting, is a ``ValueError``.
    ``prefix=False`` drops the leading-prefix rule (plain NumPy broadcasting, as Gluon).
    """
    ws = _shape(weight)
    ls = tuple(loss_shape)
    if ws == ls:
        return weight
    if prefix and 0 < len(ws) < len(ls) and _dims_equal(ws, ls[: len(ws)]):
        for _ in range(len(ls) - len(ws)):  # expand_dims, not reshape: dims may be symbolic
            weight = xp.expand_dims(weight, axis=-1)
        return weight
    if len(ws) <= len(ls) and all(
        w == 1 or w is None or w == d or d is None for w, d in zip(ws[::-1], ls[::-1], strict=False)
    ):
        return weight
    expected = (
        f"the loss's shape, a leading part of it (e.g. {ls[:1]} for one weight per sample), or "
        "a shape that broadcasts to it without enlarging it"
        if prefix
        else f"a shape that broadcasts to it without enlarging it (e.g. {ls[:1] + (1,) * (len(ls) - 1)} "
        "for one weight per sample)"
    )
    raise ValueError(
        f"polyloss: {name} of shape {ws} does not fit the loss of shape {ls}; expected {expected}"
    )


def _dims_equal(a: tuple, b: tuple) -> bool:
    return all(x == y or x is None or y is None for x, y in zip(a, b, strict=True))


def mean_or_nan(xp: Any, loss: Any) -> Any:
    """Mean over all elements; an empty loss gives NaN (0/0) on every backend, without
    warnings, still attached to the autograd graph (as torch's empty mean is)."""
    if static_size(loss) == 0:
        return xp.sum(loss) * math.nan
    return xp.mean(loss)


def mean_last_axis(xp: Any, loss: Any) -> Any:
    """Mean over the last axis (Keras's per-sample mean); an empty last axis gives NaN."""
    if loss.shape[-1] == 0:
        return xp.full(tuple(loss.shape[:-1]), math.nan, dtype=loss.dtype, device=device_of(loss))
    return xp.mean(loss, axis=-1)


def reduce_loss(
    xp: Any,
    loss: Any,
    reduction: str,
    sample_weight: Any = None,
    normalizer: Any = "count",
) -> Any:
    """Reduce an unreduced ``loss``.

    - ``none``: ``w·loss`` with the loss's shape.
    - ``sum``: ``Σ w·loss``.
    - ``mean``: ``Σ w·loss / n`` where ``n`` is the number of loss elements
      (``normalizer="count"``: Keras's and Gluon's rule) or the sum of the weights
      broadcast to the loss (``normalizer="sum_of_weights"``: a weighted average, torch's
      rule for class weights). Without weights both are the plain mean; an empty loss
      gives NaN. A number or 0-d array as ``normalizer`` is ``n`` itself (a global one).
    - ``parts``: :class:`LossParts` ``(Σ w·loss, n)``.
    """
    weight = None
    if sample_weight is not None:
        weight = align_weight(xp, sample_weight, _shape(loss))
        loss = loss * weight
    if reduction == "none":
        return loss
    if reduction == "sum":
        return xp.sum(loss)
    if reduction == "mean" and isinstance(normalizer, str):
        if weight is None or normalizer == "count" or static_size(loss) == 0:
            return mean_or_nan(xp, loss)
        # the weights broadcast to the loss (ones_like keeps symbolic dimensions working)
        return xp.sum(loss) / xp.sum(weight * xp.ones_like(loss))
    if reduction in ("mean", PARTS):
        local = None
        if reduction == PARTS:
            if weight is not None and normalizer == "sum_of_weights":
                local = xp.sum(weight * xp.ones_like(loss))
            else:
                size = static_size(loss)
                local = xp.sum(xp.ones_like(loss)) if size is None else size
        return normalized(xp, xp.sum(loss), reduction, normalizer, local)
    raise ValueError(f"polyloss: invalid reduction={reduction!r}")


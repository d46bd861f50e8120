"""Reductions shared by every loss and every convention.

``reduce_loss`` turns an unreduced loss into ``none`` / ``sum`` / ``mean`` with an optional
``sample_weight`` and an explicit normaliser for weighted means. Conventions build theirs
(Keras's ``sum_over_batch_size``, Gluon's per-sample mean, torch's weighted means) from the
helpers here.
"""

from __future__ import annotations

import math
from typing import Any

from polyloss._inputs import known_shape
from polyloss.backends import device_of

__all__ = [
    "REDUCTIONS",
    "NORMALIZERS",
    "reduce_loss",
    "align_weight",
    "static_size",
    "mean_or_nan",
    "mean_last_axis",
    "check_choice",
]

REDUCTIONS = ("none", "sum", "mean")
NORMALIZERS = ("count", "sum_of_weights")


def check_choice(name: str, value: Any, allowed: tuple) -> None:
    """``ValueError`` naming the argument unless ``value`` is one of ``allowed``."""
    if not isinstance(value, (str, type(None))) or value not in allowed:
        raise ValueError(
            f"polyloss: invalid {name}={value!r}; expected one of "
            + ", ".join(repr(a) for a in allowed)
        )


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
    normalizer: str = "count",
) -> Any:
    """Reduce an unreduced ``loss``.

    - ``none``: ``w·loss`` with the loss's shape.
    - ``sum``: ``Σ w·loss``.
    - ``mean``: ``Σ w·loss / n`` where ``n`` is the number of loss elements
      (``normalizer="count"``: Keras's and Gluon's rule) or the sum of the weights
      broadcast to the loss (``normalizer="sum_of_weights"``: a weighted average, torch's
      rule for class weights). Without weights both are the plain mean; an empty loss
      gives NaN.
    """
    weight = None
    if sample_weight is not None:
        weight = align_weight(xp, sample_weight, _shape(loss))
        loss = loss * weight
    if reduction == "none":
        return loss
    if reduction == "sum":
        return xp.sum(loss)
    if reduction == "mean":
        if weight is None or normalizer == "count" or static_size(loss) == 0:
            return mean_or_nan(xp, loss)
        # the weights broadcast to the loss (ones_like keeps symbolic dimensions working)
        return xp.sum(loss) / xp.sum(weight * xp.ones_like(loss))
    raise ValueError(f"polyloss: invalid reduction={reduction!r}")


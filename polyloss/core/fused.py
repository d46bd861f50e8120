"""Whole reductions of a regression loss in one native call (``polyloss/backends/kernels.py``).

An unreduced loss followed by a reduction is two autograd nodes instead of one, and on torch
the mean's backward alone costs as much as the fused loss's; where a namespace has the loss as
a fused kernel, its unweighted ``sum`` or ``mean`` is that one call.
"""

from __future__ import annotations

from typing import Any

from polyloss.core._helpers import has_elements, kernel
from polyloss.core.regression import absolute_error, huber, smooth_l1, squared_error

__all__ = ["fused_reduction"]

# core function -> its kernel's name (by identity: another function of the same name is not it)
_FUSABLE = {squared_error: "squared_error", absolute_error: "absolute_error", huber: "huber",
            smooth_l1: "smooth_l1"}


def fused_reduction(core_fn: Any, pred: Any, target: Any, reduction: str, *, xp: Any,
                    **params: Any) -> Any:
    """``sum`` or ``mean`` of ``core_fn(pred, target, **params)`` as one native call, where the
    namespace has that loss as a fused kernel (and the arrays are not empty); else ``None``."""
    name = _FUSABLE.get(core_fn)
    if name is None or (reduction != "mean" and reduction != "sum"):
        return None
    fused = kernel(xp, name)
    if fused is None or not has_elements(pred) or params.get("beta") == 0:
        return None  # (smooth L1 with beta = 0 is L1: no fused form of its own)
    return fused(pred, target, reduction=reduction, **params)

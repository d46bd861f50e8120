"""The shape of every canonical elementwise loss call: check, prepare, compute, reduce."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from polyloss._inputs import check_same_shape, finish, prepare
from polyloss.backends import backend_of
from polyloss.core.fused import fused_reduction
from polyloss.reduction import (
    NORMALIZERS,
    REDUCTIONS,
    LossParts,
    check_normalizer,
    check_reduction,
    reduce_loss,
)

NAMES = ("pred", "target", "sample_weight")


def elementwise_loss(
    core_fn: Callable[..., Any],
    pred: Any,
    target: Any,
    *,
    reduction: str,
    sample_weight: Any,
    normalizer: Any,
    reductions: tuple = REDUCTIONS,
    post: Callable[[Any, Any], Any] | None = None,
    **params: Any,
) -> Any:
    """Run ``core_fn(pred, target, xp=..., **params)`` and reduce it canonically.

    ``post(xp, reduced)`` is applied after the reduction (MAPE's factor 100; it must be
    linear, as it is applied to the total of ``"parts"``).
    """
    check_reduction(reduction, reductions)
    check_normalizer(normalizer, NORMALIZERS, reduction)
    with backend_of(pred, target, sample_weight, names=NAMES).scope():
        p = prepare(pred, target, sample_weight, names=NAMES)
        check_same_shape(p.pred, p.target, NAMES[:2])
        out = None
        if p.weight is None and isinstance(normalizer, str):  # a plain sum or mean
            out = fused_reduction(core_fn, p.pred, p.target, reduction, xp=p.xp, **params)
        if out is None:
            loss = core_fn(p.pred, p.target, xp=p.xp, **params)
            out = reduce_loss(p.xp, loss, reduction, p.weight, normalizer)
        if post is not None:
            out = (LossParts(post(p.xp, out.total), out.normalizer) if isinstance(out, LossParts)
                   else post(p.xp, out))
        return finish(p, out)

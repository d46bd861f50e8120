"""Helpers shared by the family modules (not a family module: its name starts with ``_``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from polyloss.bench.registry import Impl


def sides(args: tuple, native: Any, canonical: Any, mirror: Any = None, *, blocks: bool = False) -> dict:
    """The sides of a cell that all take ``args``; ``blocks``: native and mirror are Gluon blocks
    (hybridized in compiled mode)."""
    out = {
        "native": Impl(native, args, block=native if blocks else None),
        "polyloss": Impl(canonical, args),
    }
    if mirror is not None:
        out["mirror"] = Impl(mirror, args, block=mirror if blocks else None)
    return out


def keras_order(loss: Callable) -> Callable:
    """``loss(y_true, y_pred)`` called as ``f(pred, target)`` (Keras takes the target first)."""
    return lambda pred, target: loss(target, pred)


def mean_of(fn: Callable) -> Callable:
    """``fn(...).mean()``: optax's losses are unreduced."""
    return lambda *args: fn(*args).mean()

"""optax's losses (``optax.losses`` 0.2.8), reproduced exactly, on arrays of any backend.

Same names, arguments and defaults; pure functions returning **unreduced** values, with
``(predictions, targets=None)`` where ``targets=None`` means the predictions are already
the errors. Usable under ``jax.jit``, ``jax.grad`` and ``jax.vmap`` on JAX arrays, and on
every other backend.

Deliberate differences from optax (documented in docs/conventions.md):

- ``predictions`` and ``targets`` must have the same shape (optax's docstrings say
  "broadcastable"; a broadcast is refused here, as everywhere in polyloss).
- A non-positive ``delta`` raises ``ValueError``.
- float16/bfloat16 inputs are computed in float32 and returned in their own dtype.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from polyloss._inputs import check_same_shape, finish, prepare
from polyloss.backends import backend_of
from polyloss.core import regression as core

__all__ = ["squared_error", "l2_loss", "huber_loss", "log_cosh"]

_NAMES = ("predictions", "targets", "weights")
_LOG2 = math.log(2.0)


def _elementwise(core_fn: Callable[..., Any], predictions: Any, targets: Any,
                 scale: float | None = None, **params: Any) -> Any:
    backend = backend_of(predictions, targets, names=_NAMES)
    with backend.scope():
        if targets is None:
            # optax: no targets means `predictions` are the errors.
            targets = backend.xp.zeros_like(
                backend.to_xp(predictions) if backend.to_xp else predictions
            )
        p = prepare(predictions, targets, names=_NAMES)
        check_same_shape(p.pred, p.target, _NAMES[:2])
        loss = core_fn(p.pred, p.target, xp=p.xp, **params)
        if scale is not None:
            loss = scale * loss
        return finish(p, loss)


def squared_error(predictions: Any, targets: Any | None = None) -> Any:
    """``optax.losses.squared_error``: ``(predictions - targets)²``, elementwise."""
    return _elementwise(core.squared_error, predictions, targets)


def l2_loss(predictions: Any, targets: Any | None = None) -> Any:
    """``optax.losses.l2_loss``: ``½·(predictions - targets)²``, elementwise (note the ½)."""
    return _elementwise(core.squared_error, predictions, targets, scale=0.5)


def huber_loss(predictions: Any, targets: Any | None = None, *, delta: float = 1.0) -> Any:
    """``optax.losses.huber_loss``: ``½q² + delta·(|e| - q)`` with ``q = min(|e|, delta)``."""
    if not isinstance(delta, (int, float)) or not delta > 0:
        raise ValueError(f"polyloss: delta must be a number > 0, got {delta!r}")
    return _elementwise(core.huber, predictions, targets, delta=float(delta))


def _optax_log_cosh(pred: Any, target: Any, *, xp: Any) -> Any:
    # optax's own form; it cancels for tiny errors, and the mirror reproduces that.
    e = pred - target
    return xp.logaddexp(e, -e) - _LOG2


def log_cosh(predictions: Any, targets: Any | None = None) -> Any:
    """``optax.losses.log_cosh``: ``logaddexp(e, -e) - log 2`` with ``e = predictions - targets``."""
    return _elementwise(_optax_log_cosh, predictions, targets)

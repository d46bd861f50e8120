"""Regression losses, elementwise and unreduced.

Each takes ``pred`` and ``target`` of one floating dtype and shape (the callers check
and promote) and returns ``loss`` of that shape. Gradients at kinks are the same on every
backend: |r| has subgradient 0 at r = 0 (torch, TensorFlow and MXNet's choice), the
pinball loss takes its ``r >= 0`` branch at r = 0.
"""

from __future__ import annotations

import math
from typing import Any

from polyloss.core._helpers import abs_zero_grad, clip_below, has_elements, kernel

_LOG2 = math.log(2.0)


def squared_error(pred: Any, target: Any, *, xp: Any) -> Any:
    """``(pred - target)²``."""
    fused = kernel(xp, "squared_error")
    if fused is not None:
        return fused(pred, target, reduction="none")
    r = pred - target
    return r * r


def root_mean_squared_error(
    pred: Any, target: Any, *, epsilon: float, xp: Any, reduce: Any = None,
    per_element: bool = False,
) -> Any:
    """``sqrt(reduce((pred - target)²) + epsilon)``, without overflow or underflow.

    The residuals are first divided by ``s``, the power of two at or below their largest
    magnitude (at least ``sqrt(epsilon)``; each residual's own with ``per_element``, for an
    elementwise ``reduce``): ``s·sqrt(reduce((r/s)²) + (sqrt(epsilon)/s)²)`` has the same
    value, the division by a power of two is exact, and ``s`` comes from ``floor`` so no
    gradient flows through it. float32 residuals of 1e20 or 1e-20 keep their precision.
    ``reduce`` is linear (a sum, a weighted mean or an elementwise weighting; default: the
    mean).
    """
    if reduce is None:
        reduce = xp.mean
    r = pred - target
    if not has_elements(r):  # nothing to scale: sqrt(0 + epsilon), or NaN for an empty mean
        return xp.sqrt(reduce(r * r) + epsilon)
    a = abs_zero_grad(r, xp)
    m = a if per_element else xp.max(a)
    root_eps = math.sqrt(epsilon)
    if epsilon > 0:
        m = xp.where(m > root_eps, m, root_eps)
    m = xp.where(xp.isfinite(m) & (m > 0), m, 1.0)
    scale = 2.0 ** xp.floor(xp.log2(m))
    scaled = r / scale
    reduced = reduce(scaled * scaled)
    if epsilon > 0:
        floor = root_eps / scale
        reduced = reduced + floor * floor
    return scale * xp.sqrt(reduced)


def absolute_error(pred: Any, target: Any, *, xp: Any) -> Any:
    """``|pred - target|`` (gradient 0 at a zero residual)."""
    fused = kernel(xp, "absolute_error")
    if fused is not None:
        return fused(pred, target, reduction="none")
    return abs_zero_grad(pred - target, xp)


def huber(pred: Any, target: Any, *, delta: float, xp: Any) -> Any:
    """Huber: ``½r²`` where ``|r| < delta``, else ``delta·(|r| - ½delta)`` (continuous at ``delta``).

    Written with one branch condition, and the quadratic branch fed only the small
    residuals, so that the gradient is exactly ``r`` inside (the branch-free
    ``½q² + delta·(|r| - q)`` with ``q = min(|r|, delta)`` accumulates ``delta - delta + r``
    in backward and loses a tiny ``r`` entirely) and never inf/NaN outside.
    """
    fused = kernel(xp, "huber")
    out = None if fused is None else fused(pred, target, delta=delta, reduction="none")
    if out is not None:  # (a kernel may decline a parameter it is not exact for)
        return out
    return _quadratic_then_linear(abs_zero_grad(pred - target, xp), delta, 0.5, delta, xp)


def smooth_l1(pred: Any, target: Any, *, beta: float, xp: Any) -> Any:
    """Smooth L1: ``½r²/beta`` where ``|r| < beta``, else ``|r| - ½beta``; ``beta = 0`` is L1.

    Equal to ``huber(delta=beta) / beta``.
    """
    fused = kernel(xp, "smooth_l1")
    out = None if fused is None or beta == 0 else fused(pred, target, beta=beta, reduction="none")
    if out is not None:
        return out
    a = abs_zero_grad(pred - target, xp)
    if beta == 0:
        return a
    return _quadratic_then_linear(a, beta, 0.5 / beta, 1.0, xp)


def _quadratic_then_linear(a: Any, threshold: float, quad: float, slope: float, xp: Any) -> Any:
    """``quad·a²`` for ``a < threshold``, else ``slope·(a - ½threshold)``."""
    small = a < threshold
    a_small = xp.where(small, a, 0.0)
    return xp.where(small, quad * a_small * a_small, slope * (a - 0.5 * threshold))


def log_cosh(pred: Any, target: Any, *, xp: Any) -> Any:
    """``log(cosh(r))``, accurate to a few ulps relative for every ``r`` and free of overflow.

    For ``|r| < 1`` it is ``log1p(expm1(|r|)² / (2·(1 + expm1(|r|))))`` (no cancellation; the
    textbook ``|r| + log1p(exp(-2|r|)) - log 2`` loses all relative precision as ``r -> 0``),
    otherwise ``|r| + log1p(exp(-2|r|)) - log 2``. The small branch only ever sees
    ``|r| < 1``, so neither branch produces inf or NaN in the gradient.
    """
    a = abs_zero_grad(pred - target, xp)
    small = a < 1.0
    e = xp.expm1(xp.where(small, a, 0.0))
    near_zero = xp.log1p(e * e / (2.0 * (1.0 + e)))
    far = a + xp.log1p(xp.exp(-2.0 * a)) - _LOG2
    return xp.where(small, near_zero, far)


def relative_absolute_error(pred: Any, target: Any, *, epsilon: float, xp: Any) -> Any:
    """``|target - pred| / max(|target|, epsilon)`` (``epsilon = 0``: the plain ratio).

    MAPE is 100 times its mean; the factor is applied after the reduction (as Keras does),
    so a float32 ratio near the top of the range does not overflow.
    """
    denom = xp.abs(target)
    if epsilon > 0:
        denom = clip_below(denom, epsilon, xp)
    return abs_zero_grad(target - pred, xp) / denom


def squared_log_error(pred: Any, target: Any, *, epsilon: float | None, xp: Any) -> Any:
    """``(log1p(pred) - log1p(target))²``; with ``epsilon``, both are first clipped below at it."""
    if epsilon is not None:
        pred = clip_below(pred, epsilon, xp)
        target = clip_below(target, epsilon, xp)
    d = xp.log1p(pred) - xp.log1p(target)
    return d * d


def pinball(pred: Any, target: Any, *, q: float, xp: Any) -> Any:
    """Quantile (pinball) loss: ``q·r`` for ``r = target - pred >= 0``, else ``(q - 1)·r``."""
    r = target - pred
    return xp.where(r >= 0, q * r, (q - 1.0) * r)

"""Distances and similarities between embedding vectors, unreduced (Array API only)."""

from __future__ import annotations

import math
from typing import Any

from polyloss.core._helpers import abs_zero_grad


def safe_sqrt(x: Any, xp: Any) -> Any:
    """``sqrt(x)`` with a zero gradient at ``x = 0`` (instead of ``inf·0 = NaN``); NaN stays NaN."""
    zero = x <= 0
    return xp.where(zero, 0.0, xp.sqrt(xp.where(zero, 1.0, x)))


def p_norm(d: Any, p: float, axis: int, xp: Any, keepdims: bool = False) -> Any:
    """``(Σ|d|^p)^(1/p)`` along ``axis`` (``p = inf``: the largest ``|d|``), with a zero
    gradient for a zero vector."""
    if p == math.inf:
        return xp.max(abs_zero_grad(d, xp), axis=axis, keepdims=keepdims)
    if p == 2:
        return safe_sqrt(xp.sum(d * d, axis=axis, keepdims=keepdims), xp)
    if p == 1:
        return xp.sum(abs_zero_grad(d, xp), axis=axis, keepdims=keepdims)
    total = xp.sum(abs_zero_grad(d, xp) ** p, axis=axis, keepdims=keepdims)
    zero = total <= 0
    return xp.where(zero, 0.0, xp.where(zero, 1.0, total) ** (1.0 / p))


def cosine_similarity(x1: Any, x2: Any, axis: int, eps: float, xp: Any) -> Any:
    """``x1·x2 / (max(‖x1‖, eps)·max(‖x2‖, eps))``: a zero vector has similarity 0."""
    n1 = p_norm(x1, 2, axis, xp)
    n2 = p_norm(x2, 2, axis, xp)
    n1 = xp.where(n1 < eps, eps, n1)
    n2 = xp.where(n2 < eps, eps, n2)
    return xp.sum(x1 * x2, axis=axis) / (n1 * n2)


def cosine_embedding(cos: Any, target: Any, margin: float, xp: Any) -> Any:
    """``1 - cos`` where ``y = 1``, ``max(0, cos - margin)`` where ``y = -1``, else 0."""
    pos = xp.where(target == 1, 1.0 - cos, 0.0)
    neg_term = cos - margin
    return pos + xp.where(target == -1, xp.where(neg_term < 0, 0.0, neg_term), 0.0)


def triplet(d_pos: Any, d_neg: Any, margin: float, xp: Any) -> Any:
    """``max(0, d(a, p) - d(a, n) + margin)``."""
    z = d_pos - d_neg + margin
    return xp.where(z < 0, 0.0, z)  # a NaN distance stays NaN

"""Margin (hinge-type) losses, unreduced (Array API only).

Ties at a hinge's kink get the gradient of the active branch (``where(a < 0, 0, a)``),
the same on every backend, and a NaN stays NaN; conventions that split ties (optax) or give
them away (MXNet's ``relu``) build their own from ``hinge_part``.
"""

from __future__ import annotations

import math
from typing import Any

from polyloss.core._helpers import abs_zero_grad, arange_like, softplus
from polyloss.core.classification import sigmoid_bce_with_logits


def hinge_part(a: Any, xp: Any, tie: str = "active") -> Any:
    """``max(a, 0)`` with the gradient at ``a = 0`` chosen by ``tie``: ``"active"`` (1, as
    TensorFlow's ``maximum(a, 0)``), ``"inactive"`` (0, as ``relu``) or ``"split"`` (½, as
    ``jnp.maximum``/``torch.maximum``)."""
    # the conditions are written so that a NaN ``a`` selects ``a`` (NaN is never clipped to 0)
    if tie == "active":
        return xp.where(a < 0, 0.0, a)
    if tie == "inactive":
        return xp.where(a <= 0, 0.0, a)
    return 0.5 * (a + abs_zero_grad(a, xp))  # d/da at 0 = ½ (sign(0) = 0)


def hinge(pred: Any, target: Any, margin: float, xp: Any, tie: str = "active") -> Any:
    """``max(0, margin - y·ŷ)`` for labels ``y = ±1``."""
    return hinge_part(margin - target * pred, xp, tie)


def soft_margin(pred: Any, target: Any, xp: Any) -> Any:
    """``log(1 + exp(-y·x))`` computed as ``softplus(-y·x)``: finite for every finite input."""
    return softplus(-(target * pred), xp)


def hinge_embedding(pred: Any, target: Any, margin: float, xp: Any) -> Any:
    """torch's form: ``x`` where ``y != -1`` plus ``max(0, margin - x)`` where ``y != 1``
    (so labels other than ±1 get both terms, as in torch)."""
    hinge_term = xp.where(target != 1, hinge_part(margin - pred, xp), 0.0)
    return hinge_term + xp.where(target != -1, pred, 0.0)


def margin_ranking(x1: Any, x2: Any, target: Any, margin: float, xp: Any) -> Any:
    """``max(0, -y·(x1 - x2) + margin)``."""
    return hinge_part(-target * (x1 - x2) + margin, xp)


def multi_margin(scores: Any, true_score: Any, not_true: Any, margin: float, p: int,
                 num_classes: int, axis: int, xp: Any, tie: str = "active") -> Any:
    """Weston–Watkins: ``Σ_{i≠y} max(0, margin - s_y + s_i)^p / C`` along ``axis``
    (``true_score`` keeps the axis with size 1; ``not_true`` masks the true class out)."""
    h = hinge_part(margin - true_score + scores, xp, tie)
    if p == 2:
        h = h * h
    return xp.sum(xp.where(not_true, h, 0.0), axis=axis) / num_classes


def multilabel_margin(scores: Any, positive_count: Any, margin: float, xp: Any,
                      tie: str = "active") -> Any:
    """``Σ_{j positive} Σ_{i negative} max(0, margin - (s_j - s_i)) / C`` over the last axis.

    ``positive_count`` (the scores' shape) says how often each class is a target: a class
    listed twice counts twice (torch's kernel loops over the listed entries); classes with
    count 0 are the negatives.
    """
    num_classes = scores.shape[-1]
    diff = margin - (xp.expand_dims(scores, axis=-1) - xp.expand_dims(scores, axis=-2))
    negative = xp.where(positive_count == 0, xp.ones_like(scores), 0.0)
    pair = xp.expand_dims(positive_count, axis=-1) * xp.expand_dims(negative, axis=-2)
    hinged = xp.where(pair != 0, pair * hinge_part(diff, xp, tie), 0.0)
    return xp.sum(xp.sum(hinged, axis=-1), axis=-1) / num_classes


def listed_class_count(labels: Any, scores: Any, xp: Any) -> Any:
    """torch's multi-label index lists as per-class counts (``scores``' shape and dtype).

    ``labels`` (integers, the scores' shape, classes on the last axis) lists each row's target
    classes, padded with -1: reading stops at the first -1. A class listed twice counts twice
    (torch's kernel loops over the listed entries). A row listing a label outside ``[0, C)``
    (refused in eager calls; unread under jit) gets NaN counts, so its loss is NaN.
    """
    num_classes = scores.shape[-1]
    positions = arange_like(num_classes, labels, labels.dtype, xp)
    first_pad = xp.min(xp.where(labels == -1, positions, num_classes), axis=-1, keepdims=True)
    listed = positions < first_pad  # entries before the first -1
    hit = xp.logical_and(xp.expand_dims(listed, axis=-1), xp.expand_dims(labels, axis=-1) == positions)
    counts = xp.sum(xp.where(hit, xp.ones_like(xp.expand_dims(scores, axis=-2)), 0.0), axis=-2)
    outside = xp.logical_and(listed, xp.logical_or(labels < 0, labels >= num_classes))
    return xp.where(xp.any(outside, axis=-1, keepdims=True), math.nan, counts)


def multilabel_soft_margin(scores: Any, target: Any, xp: Any, weight: Any = None) -> Any:
    """``Σ_c w_c·BCE_logits(x_c, y_c) / C`` over the last axis (``weight`` broadcasts against
    the scores): ``y·softplus(-x) + (1-y)·softplus(x)``, finite for every finite ``x``."""
    loss = sigmoid_bce_with_logits(scores, target, xp)
    if weight is not None:
        loss = loss * weight
    return xp.sum(loss, axis=-1) / scores.shape[-1]


def max_even_ties(x: Any, axis: int, xp: Any, stop_gradient: Any, keepdims: bool = False) -> Any:
    """``max(x)`` along ``axis`` whose gradient is shared evenly by tied maxima on every backend
    (torch, TensorFlow and JAX split it; MXNet gives each tie the whole gradient). The value
    is exactly the maximum: ``m + Σ_ties (x - m) / k`` with ``m`` stopped adds 0."""
    m = stop_gradient(xp.max(x, axis=axis, keepdims=True))
    ties = x == m
    count = xp.sum(xp.where(ties, xp.ones_like(x), 0.0), axis=axis, keepdims=True)
    out = m + xp.sum(xp.where(ties, x - m, 0.0), axis=axis, keepdims=True) / count
    return out if keepdims else xp.squeeze(out, axis=axis)

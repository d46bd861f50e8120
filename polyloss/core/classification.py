"""Probabilistic classification losses, unreduced (Array API only).

Class indices arrive already checked and made safe (see ``safe_labels``): core code never
indexes with an out-of-range label, so the same code runs eagerly and under jit.
"""

from __future__ import annotations

import math
from typing import Any

from polyloss.core._helpers import arange_like, has_elements, kernel, softplus

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


# ---- activations ----------------------------------------------------------------------

def log_softmax(x: Any, axis: int, xp: Any) -> Any:
    """``x - logsumexp(x)`` along ``axis``, shifted by the maximum so nothing overflows.

    The shift's gradient cancels exactly in the formula, so no stop-gradient is needed; a
    row that is all ``-inf`` gives NaN, as in every framework. The namespace's fused kernel,
    where it has one, computes the same in one pass each way.
    """
    fused = kernel(xp, "log_softmax")
    if fused is not None and isinstance(axis, int) and has_elements(x):  # one axis: the kernels'
        return fused(x, axis)
    if not has_elements(x):  # no shift needed, and some namespaces cannot max over nothing
        return x - xp.log(xp.sum(xp.exp(x), axis=axis, keepdims=True))
    m = xp.max(x, axis=axis, keepdims=True)
    m = xp.where(xp.isfinite(m), m, 0.0)
    z = x - m
    return z - xp.log(xp.sum(xp.exp(z), axis=axis, keepdims=True))


def softmax(x: Any, axis: int, xp: Any) -> Any:
    return xp.exp(log_softmax(x, axis, xp))


def log_sigmoid(x: Any, xp: Any) -> Any:
    """``log σ(x) = -softplus(-x)``: finite for every finite ``x``."""
    fused = kernel(xp, "log_sigmoid")
    if fused is not None:
        return fused(x)
    return -softplus(-x, xp)


def sigmoid(x: Any, xp: Any) -> Any:
    """``σ(x)`` from ``exp(-|x|)``, so neither branch overflows."""
    positive = x >= 0
    e = xp.exp(xp.where(positive, -x, x))
    return xp.where(positive, 1.0 / (1.0 + e), e / (1.0 + e))


def clamped_log(p: Any, floor: float | None, xp: Any) -> Any:
    """``max(log p, floor)`` with a zero gradient where clamped (``floor=None``: plain log).

    The log is taken of a safe value where ``p <= 0``, so the clamped branch cannot send a
    ``0 · inf = NaN`` gradient back; a NaN ``p`` stays NaN (never clamped).
    """
    if floor is None:
        return xp.log(p)
    non_positive = p <= 0
    logp = xp.log(xp.where(non_positive, 1.0, p))
    return xp.where(xp.logical_or(non_positive, logp < floor), float(floor), logp)


# ---- class indices --------------------------------------------------------------------

def expand_class_axis(v: Any, axis: int, ndim: int, xp: Any) -> Any:
    """A length-C vector shaped to broadcast along ``axis`` of an ``ndim``-d array."""
    axis = axis % ndim
    for _ in range(ndim - 1 - axis):
        v = xp.expand_dims(v, axis=-1)
    return v


def take_class(x: Any, labels: Any, axis: int, xp: Any) -> Any:
    """``x``'s entry at each position's class index (``labels`` has ``x``'s shape without
    ``axis``): a gather where the namespace has ``take_along_axis``, a masked sum elsewhere."""
    axis = axis % len(x.shape)
    index = xp.expand_dims(labels, axis=axis)
    if hasattr(xp, "take_along_axis"):
        return xp.squeeze(xp.take_along_axis(x, index, axis=axis), axis=axis)
    classes = expand_class_axis(arange_like(x.shape[axis], labels, labels.dtype, xp), axis, len(x.shape), xp)
    return xp.sum(xp.where(index == classes, x, 0.0), axis=axis)


def softmax_cross_entropy(x: Any, labels: Any, axis: int, xp: Any) -> Any:
    """``-log_softmax(x)`` at each position's class index along ``axis`` (``labels``: safe
    indices in the indexing dtype, ``x``'s shape without ``axis``)."""
    fused = kernel(xp, "softmax_cross_entropy")
    if fused is not None and has_elements(x):
        return fused(x, labels, axis)
    return -take_class(log_softmax(x, axis, xp), labels, axis, xp)


def safe_labels(labels: Any, num_classes: int, ignore_index: int | None, xp: Any):
    """``(safe, valid, in_range)``: labels with ignored and out-of-range entries replaced by
    class 0, the mask of positions that count, and the mask of labels inside ``[0, C)``
    or equal to ``ignore_index`` (out-of-range ones make their position NaN under jit,
    where they cannot be refused)."""
    inside = xp.logical_and(labels >= 0, labels < num_classes)
    if ignore_index is None:
        valid, in_range = inside, inside
    else:
        ignored = labels == ignore_index
        valid = xp.logical_and(inside, xp.logical_not(ignored))
        in_range = xp.logical_or(inside, ignored)
    return xp.where(valid, labels, 0), valid, in_range


# ---- losses ---------------------------------------------------------------------------

def sigmoid_bce_with_logits(z: Any, y: Any, xp: Any, pos_weight: Any = None) -> Any:
    """``-(P·y·log σ(z) + (1-y)·log(1-σ(z)))`` as ``P·y·softplus(-z) + (1-y)·softplus(z)``:
    no cancellation for any sign of ``z``, gradient ``σ(z)-y`` (at P=1) everywhere."""
    fused = kernel(xp, "log_sigmoid")
    if fused is not None:  # the same with softplus(x) = -log σ(-x), one kernel each
        positive = y * fused(z)
        if pos_weight is not None:
            positive = pos_weight * positive
        return -(positive + (1.0 - y) * fused(-z))
    positive = y * softplus(-z, xp)
    if pos_weight is not None:
        positive = pos_weight * positive
    return positive + (1.0 - y) * softplus(z, xp)


def bce_on_probabilities(p: Any, y: Any, log_floor: float | None, xp: Any,
                         pos_weight: Any = None) -> Any:
    """``-(P·y·max(log p, c) + (1-y)·max(log(1-p), c))`` with ``c = log_floor``; without a
    floor a term whose weight is 0 is exactly 0 (``0·log 0 = 0``: BCE(p=0, y=0) is 0, not NaN)."""
    if log_floor is None:
        positive, negative = xlogy(y, p, xp), xlogy(1.0 - y, 1.0 - p, xp)
    else:
        positive = y * clamped_log(p, log_floor, xp)
        negative = (1.0 - y) * clamped_log(1.0 - p, log_floor, xp)
    if pos_weight is not None:
        positive = pos_weight * positive
    return -(positive + negative)


def focal_factor(p_t: Any, gamma: float, xp: Any) -> Any:
    """``(1 - p_t)^γ``; ``γ = 0`` is exactly 1 (also where ``p_t = 1``)."""
    if gamma == 0:
        return xp.ones_like(p_t)
    b = 1.0 - p_t
    non_positive = b <= 0  # (a NaN p_t stays NaN)
    # the power of a safe base where b = 0: for γ < 1 its derivative there is infinite
    return xp.where(non_positive, 0.0, xp.where(non_positive, 1.0, b) ** gamma)


def xlogy(x: Any, y: Any, xp: Any) -> Any:
    """``x·log y`` with ``0·log 0 = 0`` (and a zero gradient there).

    Where ``x = 0`` the log is taken of 1: the product is ``0·0 = 0`` and its gradient is
    ``log 1 = 0`` for ``x`` and 0 for ``y`` (the ``where`` passes none), so no second
    ``where`` is needed (each is a slow pass on CPU backends)."""
    return x * xp.log(xp.where(x == 0, 1.0, y))


def kl_pointwise(log_q: Any, p: Any, xp: Any) -> Any:
    """``p·(log p - log q)``; where ``p = 0`` the term is exactly 0, whatever ``q`` is (both
    products are ``0·0`` there, with zero gradients, as in :func:`xlogy`)."""
    zero = p == 0
    return p * xp.log(xp.where(zero, 1.0, p)) - p * xp.where(zero, 0.0, log_q)


def kl_pointwise_log_target(log_q: Any, log_p: Any, xp: Any) -> Any:
    """``exp(log p)·(log p - log q)``; where ``p = 0`` (``log p = -inf``) the term is 0."""
    zero = log_p == -math.inf
    safe_log_p = xp.where(zero, 0.0, log_p)
    return xp.where(zero, 0.0, xp.exp(safe_log_p) * (safe_log_p - xp.where(zero, 0.0, log_q)))


def poisson_nll(pred: Any, target: Any, *, log_input: bool, eps: float, xp: Any) -> Any:
    """``exp(z) - y·z`` (log rate) or ``r - y·log(r + eps)`` (rate)."""
    if log_input:
        return xp.exp(pred) - target * pred
    return pred - target * xp.log(pred + eps)


def stirling_term(target: Any, xp: Any) -> Any:
    """``y·log y - y + ½·log(2πy)`` where ``y > 1``, else 0 (never NaN, also for y = 0)."""
    counts = target > 1
    y = xp.where(counts, target, 2.0)
    return xp.where(counts, y * xp.log(y) - y + 0.5 * xp.log(2.0 * math.pi * y), 0.0)


def gaussian_nll(pred: Any, target: Any, var: Any, *, full: bool, xp: Any) -> Any:
    """``½·(log v + (x - y)²/v)`` (+ ``½·log 2π`` if ``full``), ``var`` already clamped."""
    r = pred - target
    loss = 0.5 * (xp.log(var) + r * r / var)
    if full:
        loss = loss + _HALF_LOG_2PI
    return loss

"""Contrastive losses over pairs of embeddings, unreduced (Array API only).

- NT-Xent / supervised contrastive terms over a batch with group labels (``ntxent_terms``);
- the classic pairwise contrastive loss of Hadsell, Chopra & LeCun (2006) (``contrastive``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from polyloss.core._helpers import has_elements
from polyloss.core.embedding import safe_sqrt


def _identity(x: Any) -> Any:
    return x


def pair_masks(labels: Any, xp: Any) -> tuple[Any, Any]:
    """``(positive, negative)`` ``(B, B)`` masks for 1-D ``labels``: positive where the labels are
    equal and ``i ≠ j`` (a sample is not its own positive), negative where they differ."""
    same = xp.expand_dims(labels, axis=1) == xp.expand_dims(labels, axis=0)
    # sample positions 1..B, built from the labels so they live on the labels' device
    idx = xp.cumulative_sum(xp.ones_like(labels), axis=0)
    other = xp.expand_dims(idx, axis=1) != xp.expand_dims(idx, axis=0)
    return xp.logical_and(same, other), xp.logical_not(same)


def unit_rows(x: Any, min_norm2: float, xp: Any) -> Any:
    """Rows of ``x`` divided by ``√max(Σx², min_norm2)`` (a zero row stays 0 if ``min_norm2 > 0``)."""
    norm2 = xp.sum(x * x, axis=-1, keepdims=True)
    return x / xp.sqrt(xp.where(norm2 < min_norm2, min_norm2, norm2))


def ntxent_terms(s: Any, pos: Any, neg: Any, xp: Any,
                 stop_gradient: Callable[[Any], Any] = _identity) -> tuple[Any, Any]:
    """Per anchor ``i``: ``(Σ_{j∈P(i)} ℓ_ij, |P(i)|)`` with
    ``ℓ_ij = -log(exp s_ij / (exp s_ij + Σ_{k∈N(i)} exp s_ik))`` for the ``(B, B)`` similarity
    logits ``s``. Rows are shifted by their maximum over ``P(i) ∪ N(i)`` (the shift cancels;
    ``stop_gradient`` may stop it, as optax does). Pairs that do not count take no ``log(0)``.
    """
    masked = xp.where(xp.logical_or(pos, neg), s, -math.inf)
    m = xp.max(masked, axis=1, keepdims=True) if has_elements(s) else xp.sum(
        masked, axis=1, keepdims=True)
    m = stop_gradient(xp.where(xp.isfinite(m), m, 0.0))
    shift_pos = xp.where(pos, s, -math.inf) - m
    shift_neg = xp.where(neg, s, -math.inf) - m
    denom = xp.sum(xp.exp(shift_neg), axis=1, keepdims=True) + xp.exp(shift_pos)
    log_softmax = shift_pos - xp.log(xp.where(pos, denom, 1.0))
    ones = xp.ones_like(s)
    return (-xp.sum(xp.where(pos, log_softmax, 0.0), axis=1),
            xp.sum(xp.where(pos, ones, 0.0), axis=1))


def contrastive(d2: Any, target: Any, margin: float, eps: float, xp: Any) -> Any:
    """``y·(d² + eps) + (1 - y)·max(0, margin - √(d² + eps))²`` from squared distances ``d2``.

    The similar-pair term uses the squared distance itself (no square root: smooth at 0);
    the dissimilar term's root has a zero gradient at ``d² + eps = 0``.
    """
    d2 = d2 + eps if eps else d2
    gap = margin - safe_sqrt(d2, xp)
    hinge = xp.where(gap <= 0, 0.0, gap)  # a NaN stays NaN
    return target * d2 + (1.0 - target) * (hinge * hinge)

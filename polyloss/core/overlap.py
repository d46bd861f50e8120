"""Overlap (segmentation) losses, per (sample, class) scores (Array API only)."""

from __future__ import annotations

from typing import Any

from polyloss.core._helpers import take_along_last


def soft_counts(probs: Any, target: Any, axes: tuple, xp: Any) -> tuple:
    """Soft true positives, false positives and false negatives summed over ``axes``."""
    tp = xp.sum(probs * target, axis=axes)
    fp = xp.sum(probs * (1.0 - target), axis=axes)
    fn = xp.sum((1.0 - probs) * target, axis=axes)
    return tp, fp, fn


def tversky_index(tp: Any, fp: Any, fn: Any, alpha: float, beta: float, smooth_numerator: float,
                  smooth_denominator: float, xp: Any) -> Any:
    """``(TP + s_n) / (TP + α·FP + β·FN + s_d)``: Dice at α = β = ½, Jaccard (IoU) at α = β = 1."""
    return (tp + smooth_numerator) / (tp + alpha * fp + beta * fn + smooth_denominator)


# ---- Lovász extension of the Jaccard loss (Berman, Triki & Blaschko 2018) -----------------

def _jaccard_loss(intersection: Any, union: Any, xp: Any) -> Any:
    """``1 - I/U``; 0 where ``U = 0`` (no ground truth and no error yet: nothing is wrong)."""
    nonempty = union > 0
    return xp.where(nonempty, 1.0 - intersection / xp.where(nonempty, union, 1.0), 0.0)


def lovasz_jaccard_grad(gt_sorted: Any, valid_sorted: Any, xp: Any) -> Any:
    """The Lovász extension's weights ``g_k = J_k - J_{k-1}`` along the last axis.

    Positions are in decreasing order of error; ``J_k = 1 - |gt ∖ M_k| / |gt ∪ M_k|`` is the
    Jaccard loss when the first ``k`` positions are the mistakes ``M_k`` (``J_0 = 0``):
    ``|gt ∖ M_k| = Σgt - cumsum(gt)_k``, ``|gt ∪ M_k| = Σgt + cumsum(1 - gt)_k``. Positions
    with ``valid_sorted = 0`` (ignored) count in neither cumulative sum, so their weight is
    exactly 0 wherever they sort. All counts are whole numbers, exact in floating point
    (up to 2**24 positions per row in float32).
    """
    gts = xp.sum(gt_sorted, axis=-1, keepdims=True)
    wrong = valid_sorted - gt_sorted  # 1 at valid background positions
    intersection = gts - xp.cumulative_sum(gt_sorted, axis=-1)
    union = gts + xp.cumulative_sum(wrong, axis=-1)
    # J_{k-1} from the same whole numbers, one position back (J_0 = 1 - Σgt/Σgt = 0)
    previous = _jaccard_loss(intersection + gt_sorted, union - wrong, xp)
    return _jaccard_loss(intersection, union, xp) - previous


def lovasz(errors: Any, key: Any, gt: Any, valid: Any, xp: Any) -> Any:
    """Lovász extension of the Jaccard loss ``Σ_k e_(k)·(J_k - J_{k-1})`` along the last axis.

    ``key`` orders the positions (descending, ties kept in their original order by a stable
    sort, so the gradient at ties is the same on every backend); ``errors`` (non-negative,
    0 at ignored positions) are gathered in that order; ``gt`` is the 0/1 ground truth (0 at
    ignored positions) and ``valid`` 1 where a position counts. The value does not depend on
    how ties are ordered (a tied group contributes ``e·(J_after - J_before)``).
    """
    if tuple(errors.shape)[-1] == 0:
        return xp.sum(errors, axis=-1)
    order = xp.argsort(key, axis=-1, descending=True, stable=True)
    weights = lovasz_jaccard_grad(take_along_last(gt, order, xp), take_along_last(valid, order, xp), xp)
    return xp.sum(take_along_last(errors, order, xp) * weights, axis=-1)

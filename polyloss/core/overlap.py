"""Overlap (segmentation) losses, per (sample, class) scores (Array API only)."""

from __future__ import annotations

from typing import Any


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

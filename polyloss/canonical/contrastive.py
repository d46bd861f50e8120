"""Canonical contrastive losses: NT-Xent over a labelled batch, and the pairwise contrastive loss.

``ntxent`` compares every embedding of a batch with every other (positives share a label);
``contrastive`` scores given pairs by their Euclidean distance. Both are written once in
``polyloss.core.contrastive``.
"""

from __future__ import annotations

import math
from typing import Any

from polyloss._inputs import check_same_shape, finish, prepare, prepare_extra, values_checked
from polyloss.backends import backend_of
from polyloss.canonical.classification import _batch_size, _check_common, _check_number, _reduce
from polyloss.canonical.embedding import _vector_axis
from polyloss.core import contrastive as core
from polyloss.reduction import check_choice

__all__ = ["ntxent", "contrastive"]

NTXENT_REDUCTIONS = ("none", "sum", "mean", "batchmean")
NTXENT_NORMALIZERS = ("valid_count", "sum_of_weights")


def _positive_number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"polyloss: {name} must be a number > 0, got {value!r}")
    return float(value)


def ntxent(embeddings: Any, labels: Any, *, temperature: float = 0.07, eps: float = 1e-8,
           reduction: str = "mean", sample_weight: Any = None,
           normalizer: str | float | Any = "valid_count") -> Any:
    """NT-Xent (normalised temperature-scaled cross entropy; SimCLR, Chen et al. 2020) in its
    supervised form: a batch of ``embeddings`` ``(B, D)`` with integer group ``labels`` ``(B,)``.

    With ``s_ij = cos(e_i, e_j)/temperature`` (``cos = e_i·e_j / (max(‖e_i‖, eps)·max(‖e_j‖, eps))``),
    positives ``P(i) = {j ≠ i : y_j = y_i}`` and negatives ``N(i) = {j : y_j ≠ y_i}``, each
    positive pair ``(i, j)`` costs
    ``ℓ_ij = -log(exp s_ij / (exp s_ij + Σ_{k∈N(i)} exp s_ik))``
    (the other positives of ``i`` are not in the denominator). ``sample_weight`` ``(B,)`` weighs
    every pair of its anchor.

    Reductions:

    - ``"mean"`` (default): the mean over all positive pairs, ``Σ w_i ℓ_ij / Σ_i |P(i)|``
      (``normalizer="valid_count"``) or ``/ Σ_i w_i |P(i)|`` (``"sum_of_weights"``); NaN when
      the batch has no positive pair. Unweighted, this is ``optax.losses.ntxent``.
    - ``"sum"``: ``Σ_i w_i Σ_{j∈P(i)} ℓ_ij``; ``"batchmean"``: that sum over ``B``.
    - ``"none"``: one value per anchor, ``w_i · mean_{j∈P(i)} ℓ_ij`` (0 for an anchor with no
      positive). The mean of these equals ``"mean"`` when every anchor has as many positives
      (SimCLR's two views: exactly one); otherwise ``"mean"`` weighs anchors by their number
      of positives, as optax and pytorch-metric-learning's ``NTXentLoss`` do.

    Equivalents: ``optax.losses.ntxent`` (``"mean"``; norms floored at ``√finfo.eps`` there),
    pytorch-metric-learning ``NTXentLoss``. MONAI's ``ContrastiveLoss`` (two views, all other
    samples in the denominator) is a different definition.
    """
    check_choice("reduction", reduction, NTXENT_REDUCTIONS)
    check_choice("normalizer", normalizer, NTXENT_NORMALIZERS)
    temperature = _positive_number("temperature", temperature)
    eps = _positive_number("eps", eps)
    names = ("embeddings", "labels", "sample_weight")
    with backend_of(embeddings, labels, sample_weight, names=names).scope():
        p = prepare(embeddings, labels, sample_weight, names=names, integer_target=True)
        xp = p.xp
        if len(p.pred.shape) != 2:
            raise ValueError(f"polyloss: embeddings must be 2-D (batch, features), got shape "
                             f"{tuple(p.pred.shape)}")
        batch = p.pred.shape[0]
        if len(p.target.shape) != 1 or p.target.shape[0] != batch:
            raise ValueError(f"polyloss: labels must have shape ({batch},) (one label per "
                             f"embedding), got {tuple(p.target.shape)}")
        if p.backend.is_floating(p.target.dtype):
            raise TypeError(f"polyloss: labels must be an integer (or bool) array, got dtype "
                            f"{p.target.dtype}")
        w = p.weight
        if w is not None and tuple(w.shape) != (batch,):
            raise ValueError(f"polyloss: sample_weight must have shape ({batch},) (one weight per "
                             f"anchor), got {tuple(w.shape)}")
        unit = core.unit_rows(p.pred, eps * eps, xp)
        s = xp.matmul(unit, xp.permute_dims(unit, (1, 0))) / temperature
        pos, neg = core.pair_masks(p.target, xp)
        per_anchor, positives = core.ntxent_terms(s, pos, neg, xp)
        if w is not None:
            per_anchor = per_anchor * w
        if reduction == "none":
            has = positives > 0
            return finish(p, xp.where(has, per_anchor / xp.where(has, positives, 1.0), 0.0))
        total = xp.sum(per_anchor)
        if reduction == "sum":
            return finish(p, total)
        if reduction == "batchmean":
            return finish(p, total / batch if batch else total * math.nan)
        counted = positives if (w is None or normalizer == "valid_count") else positives * w
        denom = xp.sum(counted)
        empty = denom == 0
        return finish(p, xp.where(empty, math.nan, total / xp.where(empty, 1.0, denom)))


def contrastive(x1: Any, x2: Any, target: Any, *, margin: float = 1.0, eps: float = 0.0,
                axis: int = -1, reduction: str = "mean", sample_weight: Any = None,
                normalizer: str | float | Any = "count") -> Any:
    """The pairwise contrastive loss (Hadsell, Chopra & LeCun 2006) per vector pair:
    ``y·d² + (1 - y)·max(0, margin - d)²`` with ``d = √(Σ(x1 - x2)² + eps)`` along ``axis``
    and ``target`` ``y`` = 1 for a similar pair, 0 for a dissimilar one (one label per pair;
    values between 0 and 1 interpolate, values outside ``[0, 1]`` raise ``ValueError`` in eager
    calls; convert ±1 labels with ``(y + 1)/2``).

    No ½ factor: the paper writes ``½·d²`` and ``½·max(0, m - d)²``, so this is twice the
    paper's value (the same minimiser); it equals TensorFlow Addons' ``contrastive_loss`` fed
    ``d``. ``eps`` sits inside the root as in :func:`triplet_margin` and ``d² = Σ(x1 - x2)² +
    eps`` in the similar term, so the value is exact for ``eps = 0`` (the default); the
    dissimilar term has a zero gradient where ``d = 0`` (identical vectors) instead of NaN.
    """
    _check_common(reduction, normalizer)
    margin = _check_number("margin", margin, minimum=0.0)
    eps = _check_number("eps", eps, minimum=0.0)
    names = ("x1", "x2", "sample_weight", "target")
    with backend_of(x1, x2, sample_weight, target, names=names).scope():
        p = prepare(x1, x2, sample_weight, names=names[:3])
        check_same_shape(p.pred, p.target, names[:2])
        xp = p.xp
        axis = _vector_axis(p.pred, axis, "x1")
        d = p.pred - p.target
        d2 = xp.sum(d * d, axis=axis)
        y = prepare_extra(p, target, "target")
        check_same_shape(d2, y, ("the pair distances", "target"))
        if values_checked(p.backend, y):
            if bool(xp.any(xp.logical_or(y < 0, y > 1))):
                raise ValueError("polyloss: target must hold 0/1 similarity labels (1 = similar) "
                                 "in [0, 1]; for ±1 labels pass (target + 1) / 2")
        loss = core.contrastive(d2, y, margin, eps, xp)
        return finish(p, _reduce(xp, loss, reduction, p.weight, normalizer, batch=_batch_size(p.pred)))

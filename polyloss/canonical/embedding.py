"""Canonical embedding losses: cosine similarity, cosine embedding and triplet margin.

Vectors lie along ``axis`` (the last by default); the loss has one value per vector pair
(or triplet) before the reduction. Norms have zero gradients at zero vectors.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from polyloss._inputs import check_same_shape, finish, prepare, prepare_extra
from polyloss.backends import backend_of
from polyloss.canonical.classification import _batch_size, _check_common, _check_number, _reduce
from polyloss.core import embedding as core
from polyloss.core._helpers import abs_zero_grad

__all__ = ["cosine_similarity", "cosine_embedding", "triplet_margin"]


def _vector_axis(x: Any, axis: int, name: str) -> int:
    ndim = len(x.shape)
    if ndim == 0 or not -ndim <= axis < ndim:
        raise ValueError(f"polyloss: {name} of shape {tuple(x.shape)} has no axis {axis}")
    return axis % ndim


def cosine_similarity(pred: Any, target: Any, *, axis: int = -1, eps: float = 1e-8,
                      reduction: str = "mean", sample_weight: Any = None,
                      normalizer: str | float | Any = "count") -> Any:
    """Cosine similarity ``x·y / (max(‖x‖, eps)·max(‖y‖, eps))`` along ``axis`` (a similarity:
    use ``1 - cosine_similarity`` or its negative as a loss); a zero vector gives 0.

    Equivalents: ``torch.nn.functional.cosine_similarity``, ``-keras.losses.CosineSimilarity``,
    ``optax.losses.cosine_similarity`` (``epsilon`` on the squared norms there).
    """
    _check_common(reduction, normalizer)
    eps = _check_number("eps", eps, minimum=0.0)
    names = ("pred", "target", "sample_weight")
    with backend_of(pred, target, sample_weight, names=names).scope():
        p = prepare(pred, target, sample_weight, names=names)
        check_same_shape(p.pred, p.target, names[:2])
        axis = _vector_axis(p.pred, axis, "pred")
        out = core.cosine_similarity(p.pred, p.target, axis, eps, p.xp)
        return finish(p, _reduce(p.xp, out, reduction, p.weight, normalizer, batch=_batch_size(p.pred)))


def cosine_embedding(x1: Any, x2: Any, target: Any, *, margin: float = 0.0, axis: int = -1,
                     eps: float = 1e-8, reduction: str = "mean", sample_weight: Any = None,
                     normalizer: str | float | Any = "count") -> Any:
    """Cosine embedding loss: ``1 - cos(x1, x2)`` for similar pairs (``target = 1``) and
    ``max(0, cos - margin)`` for dissimilar ones (``target = -1``); ``target`` has one label
    per vector pair.

    Equivalents: ``torch.nn.CosineEmbeddingLoss`` (which adds 1e-12 to the squared norms),
    ``gluon.loss.CosineEmbeddingLoss`` (per pair, ``max(‖x1‖‖x2‖, 1e-12)``).
    """
    _check_common(reduction, normalizer)
    margin = _check_number("margin", margin)
    names = ("x1", "x2", "sample_weight", "target")
    with backend_of(x1, x2, sample_weight, target, names=names).scope():
        p = prepare(x1, x2, sample_weight, names=names[:3])
        check_same_shape(p.pred, p.target, names[:2])
        axis = _vector_axis(p.pred, axis, "x1")
        cos = core.cosine_similarity(p.pred, p.target, axis, float(eps), p.xp)
        y = prepare_extra(p, target, "target")
        check_same_shape(cos, y, ("the pair similarities", "target"))
        loss = core.cosine_embedding(cos, y, margin, p.xp)
        return finish(p, _reduce(p.xp, loss, reduction, p.weight, normalizer, batch=_batch_size(p.pred)))


def triplet_margin(anchor: Any, positive: Any, negative: Any, *, margin: float = 1.0, p: float = 2.0,
                   eps: float = 1e-6, swap: bool = False, squared: bool = False,
                   distance: Callable[[Any, Any], Any] | None = None, axis: int = -1,
                   reduction: str = "mean", sample_weight: Any = None,
                   normalizer: str | float | Any = "count") -> Any:
    """Triplet margin loss ``max(0, d(a, p) - d(a, n) + margin)`` per triplet.

    ``d`` is the p-norm ``(Σ|a - b|^p + eps)^(1/p)`` along ``axis`` (``eps`` inside the root
    keeps the gradient finite for identical vectors), the squared Euclidean distance
    ``Σ(a - b)²`` with ``squared=True``, or any ``distance(a, b)`` returning one value per
    pair. ``swap=True`` uses ``min(d(a, n), d(p, n))`` (Balntas et al. 2016).

    Equivalents: ``torch.nn.TripletMarginLoss`` (eps added to the difference instead),
    ``TripletMarginWithDistanceLoss(distance_function=)``, ``gluon.loss.TripletLoss``
    (``squared=True``, summed over every non-batch axis), ``optax.losses.triplet_margin_loss``.
    """
    _check_common(reduction, normalizer)
    margin = _check_number("margin", margin)
    if not isinstance(p, (int, float)) or not p >= 1:
        raise ValueError(f"polyloss: p must be a number >= 1, got {p!r}")
    names = ("anchor", "positive", "sample_weight", "negative")
    with backend_of(anchor, positive, sample_weight, negative, names=names).scope():
        prep = prepare(anchor, positive, sample_weight, names=names[:3])
        check_same_shape(prep.pred, prep.target, names[:2])
        xp = prep.xp
        neg = prepare_extra(prep, negative, "negative")
        check_same_shape(prep.pred, neg, ("anchor", "negative"))
        axis = _vector_axis(prep.pred, axis, "anchor")

        def dist(a: Any, b: Any) -> Any:
            if distance is not None:
                return distance(a, b)
            d = a - b
            if squared:
                return xp.sum(d * d, axis=axis)
            if p == math.inf:
                return core.p_norm(d, p, axis, xp)
            # |d| as d·sign(d): a zero difference has gradient 0 on every backend (JAX's abs
            # has +1 there)
            total = xp.sum(abs_zero_grad(d, xp) ** p if p != 2 else d * d, axis=axis) + eps
            return total ** (1.0 / p) if p != 2 else xp.sqrt(total)

        d_pos = dist(prep.pred, prep.target)
        d_neg = dist(prep.pred, neg)
        if swap:
            d_swap = dist(prep.target, neg)
            d_neg = xp.where(d_swap < d_neg, d_swap, d_neg)
        loss = core.triplet(d_pos, d_neg, margin, xp)
        return finish(prep, _reduce(xp, loss, reduction, prep.weight, normalizer,
                                    batch=_batch_size(prep.pred)))

"""Canonical margin losses: hinge family, Weston–Watkins and Crammer–Singer multiclass
hinges, hinge embedding, soft margin and margin ranking.

Signature as the other canonical losses (prediction first, ``reduction`` ``"none"``,
``"sum"``, ``"mean"`` or ``"batchmean"``, ``sample_weight``, ``normalizer``). Binary labels
are ``±1`` (``label_format="signed"``) or ``0/1`` (``"binary"``, mapped to ``2y - 1``),
chosen explicitly: nothing is guessed from the values (Keras converts 0/1 labels only if
every label in the batch is 0 or 1). At a hinge's kink the gradient is the active branch's.
"""

from __future__ import annotations

from typing import Any

from polyloss._inputs import check_same_shape, finish, prepare, prepare_extra, values_checked
from polyloss._labels import as_index, check_class_labels
from polyloss.backends import backend_of
from polyloss.canonical.classification import _batch_size, _check_common, _check_number, _reduce
from polyloss.core import classification as cls_core
from polyloss.core import margin as core
from polyloss.core._helpers import arange_like
from polyloss.reduction import check_choice

__all__ = [
    "hinge", "squared_hinge", "categorical_hinge", "multi_margin", "hinge_embedding",
    "soft_margin", "margin_ranking", "multilabel_margin", "multilabel_soft_margin",
]

LABEL_FORMATS = ("signed", "binary")
_NAMES = ("pred", "target", "sample_weight")


def _signed(xp: Any, target: Any, label_format: str) -> Any:
    return 2.0 * target - 1.0 if label_format == "binary" else target


def _binary(core_fn, pred, target, *, label_format, reduction, sample_weight, normalizer, post=None,
            **params):
    check_choice("label_format", label_format, LABEL_FORMATS)
    _check_common(reduction, normalizer)
    with backend_of(pred, target, sample_weight, names=_NAMES).scope():
        p = prepare(pred, target, sample_weight, names=_NAMES)
        check_same_shape(p.pred, p.target, _NAMES[:2])
        xp = p.xp
        loss = core_fn(p.pred, _signed(xp, p.target, label_format), xp=xp, **params)
        if post is not None:
            loss = post(loss)
        return finish(p, _reduce(xp, loss, reduction, p.weight, normalizer, batch=_batch_size(p.pred)))


def hinge(pred: Any, target: Any, *, margin: float = 1.0, label_format: str = "signed",
          reduction: str = "mean", sample_weight: Any = None, normalizer: str | float | Any = "count") -> Any:
    """Binary hinge ``max(0, margin - y·ŷ)``, elementwise, reduced.

    Equivalents: ``keras.losses.Hinge`` (per-sample mean; converts 0/1 labels when all are),
    ``gluon.loss.HingeLoss`` (per sample), ``optax.losses.hinge_loss`` (unreduced).
    """
    margin = _check_number("margin", margin)
    return _binary(core.hinge, pred, target, label_format=label_format, reduction=reduction,
                   sample_weight=sample_weight, normalizer=normalizer, margin=margin)


def squared_hinge(pred: Any, target: Any, *, margin: float = 1.0, label_format: str = "signed",
                  reduction: str = "mean", sample_weight: Any = None,
                  normalizer: str | float | Any = "count") -> Any:
    """Squared hinge ``max(0, margin - y·ŷ)²``. Equivalents: ``keras.losses.SquaredHinge``,
    ``gluon.loss.SquaredHingeLoss``."""
    margin = _check_number("margin", margin)
    return _binary(core.hinge, pred, target, label_format=label_format, reduction=reduction,
                   sample_weight=sample_weight, normalizer=normalizer, margin=margin,
                   post=lambda h: h * h)


def soft_margin(pred: Any, target: Any, *, label_format: str = "signed", reduction: str = "mean",
                sample_weight: Any = None, normalizer: str | float | Any = "count") -> Any:
    """Logistic (soft-margin) loss ``log(1 + exp(-y·x))``, stable for any ``x``.

    Equivalents: ``torch.nn.SoftMarginLoss`` (which overflows to inf at y·x < -88 in
    float32), ``gluon.loss.LogisticLoss``, ``binary_cross_entropy(from_logits=True)`` with
    0/1 labels.
    """
    return _binary(core.soft_margin, pred, target, label_format=label_format, reduction=reduction,
                   sample_weight=sample_weight, normalizer=normalizer)


def hinge_embedding(pred: Any, target: Any, *, margin: float = 1.0, reduction: str = "mean",
                    sample_weight: Any = None, normalizer: str | float | Any = "count") -> Any:
    """Hinge embedding: ``x`` where ``y = 1`` and ``max(0, margin - x)`` where ``y = -1``
    (``pred`` is a distance). Equivalent: ``torch.nn.HingeEmbeddingLoss``."""
    margin = _check_number("margin", margin)
    _check_common(reduction, normalizer)
    with backend_of(pred, target, sample_weight, names=_NAMES).scope():
        p = prepare(pred, target, sample_weight, names=_NAMES)
        check_same_shape(p.pred, p.target, _NAMES[:2])
        xp = p.xp
        _check_signed(p, p.target, "target")
        loss = core.hinge_embedding(p.pred, p.target, margin, xp)
        return finish(p, _reduce(xp, loss, reduction, p.weight, normalizer, batch=_batch_size(p.pred)))


def margin_ranking(x1: Any, x2: Any, target: Any, *, margin: float = 0.0, reduction: str = "mean",
                   sample_weight: Any = None, normalizer: str | float | Any = "count") -> Any:
    """Margin ranking ``max(0, -y·(x1 - x2) + margin)``: ``y = 1`` wants ``x1`` ranked above
    ``x2``. Equivalent: ``torch.nn.MarginRankingLoss``."""
    margin = _check_number("margin", margin)
    _check_common(reduction, normalizer)
    names = ("x1", "x2", "sample_weight", "target")
    with backend_of(x1, x2, sample_weight, target, names=names).scope():
        p = prepare(x1, x2, sample_weight, names=names[:3])
        check_same_shape(p.pred, p.target, names[:2])
        xp = p.xp
        y = prepare_extra(p, target, "target")
        check_same_shape(p.pred, y, ("x1", "target"))
        loss = core.margin_ranking(p.pred, p.target, y, margin, xp)
        return finish(p, _reduce(xp, loss, reduction, p.weight, normalizer, batch=_batch_size(p.pred)))


def _check_signed(p: Any, y: Any, name: str) -> None:
    backend, xp = p.backend, p.xp
    if values_checked(backend, y):
        if bool(xp.any(xp.logical_and(y != 1, y != -1))):
            raise ValueError(f"polyloss: {name} must hold labels 1 or -1")


def _multiclass(pred, target, *, axis, reduction, sample_weight, normalizer, kernel, class_weight=None):
    _check_common(reduction, normalizer)
    names = _NAMES + ("class_weight",)
    with backend_of(pred, target, sample_weight, class_weight, names=names).scope():
        p = prepare(pred, target, sample_weight, names=_NAMES, integer_target=True)
        xp = p.xp
        ndim = len(p.pred.shape)
        if ndim == 0:
            raise ValueError("polyloss: pred must have a class axis, got a 0-d array")
        axis %= ndim
        num_classes = p.pred.shape[axis]
        expected = tuple(d for i, d in enumerate(p.pred.shape) if i != axis)
        if tuple(p.target.shape) != expected:
            raise ValueError(f"polyloss: target holds class indices and must have shape {expected}, "
                             f"got {tuple(p.target.shape)}")
        check_class_labels(p.backend, p.target, num_classes, None, "target")
        safe, _, in_range = cls_core.safe_labels(as_index(p.backend, p.target), num_classes, None, xp)
        classes = cls_core.expand_class_axis(arange_like(num_classes, safe, safe.dtype, xp), axis, ndim, xp)
        not_true = xp.expand_dims(safe, axis=axis) != classes
        true_score = xp.expand_dims(cls_core.take_class(p.pred, safe, axis, xp), axis=axis)
        loss = kernel(p, xp, true_score, not_true, safe, axis, num_classes)
        loss = xp.where(in_range, loss, float("nan"))
        return finish(p, _reduce(xp, loss, reduction, p.weight, normalizer, batch=_batch_size(p.pred)))


def categorical_hinge(pred: Any, target: Any, *, margin: float = 1.0, axis: int = -1,
                      reduction: str = "mean", sample_weight: Any = None,
                      normalizer: str | float | Any = "count") -> Any:
    """Crammer–Singer multiclass hinge ``max(0, margin + max_{k≠y} s_k - s_y)`` with class
    indices along ``axis``.

    Equivalents: ``optax.losses.multiclass_hinge_loss`` (margin 1), ``keras.losses.CategoricalHinge``
    on one-hot labels (which is wrong when every wrong-class score is negative: it takes the
    max over ``(1-y)·s``, so the true class counts as a 0 score).
    """
    margin = _check_number("margin", margin)

    def kernel(p, xp, true_score, not_true, safe, axis, num_classes):
        others = xp.where(not_true, p.pred, -float("inf"))
        best_other = core.max_even_ties(others, axis, xp, p.backend.stop_gradient, keepdims=True)
        return xp.squeeze(core.hinge_part(margin + best_other - true_score, xp), axis=axis)

    return _multiclass(pred, target, axis=axis, reduction=reduction, sample_weight=sample_weight,
                       normalizer=normalizer, kernel=kernel)


def multi_margin(pred: Any, target: Any, *, p: int = 1, margin: float = 1.0, class_weight: Any = None,
                 axis: int = -1, reduction: str = "mean", sample_weight: Any = None,
                 normalizer: str | float | Any = "count") -> Any:
    """Weston–Watkins multiclass hinge ``Σ_{i≠y} w_y·max(0, margin - s_y + s_i)^p / C``
    (``p`` 1 or 2) with class indices along ``axis``. Equivalent: ``torch.nn.MultiMarginLoss``
    (class axis 1)."""
    if p not in (1, 2) or isinstance(p, bool):
        raise ValueError(f"polyloss: p must be 1 or 2, got {p!r}")
    margin = _check_number("margin", margin)
    power = p

    def kernel(prep, xp, true_score, not_true, safe, axis, num_classes):
        loss = core.multi_margin(prep.pred, true_score, not_true, margin, power, num_classes, axis, xp)
        if class_weight is not None:
            cw = prepare_extra(prep, class_weight, "class_weight")
            if tuple(cw.shape) != (num_classes,):
                raise ValueError(f"polyloss: class_weight must have shape ({num_classes},), got "
                                 f"{tuple(cw.shape)}")
            shaped = xp.broadcast_to(cls_core.expand_class_axis(cw, axis, len(prep.pred.shape), xp),
                                     tuple(prep.pred.shape))
            loss = loss * cls_core.take_class(shaped, safe, axis, xp)
        return loss

    return _multiclass(pred, target, axis=axis, reduction=reduction, sample_weight=sample_weight,
                       normalizer=normalizer, kernel=kernel, class_weight=class_weight)


# ---- multi-label ------------------------------------------------------------------------------

TARGET_FORMATS = ("multi_hot", "indices")


def _classes_last(p: Any) -> None:
    if len(p.pred.shape) == 0:
        raise ValueError("polyloss: pred must have a class axis (the last), got a 0-d array")
    check_same_shape(p.pred, p.target, _NAMES[:2])


def _check_multi_hot(p: Any, t: Any) -> None:
    if values_checked(p.backend, t):
        if bool(p.xp.any(p.xp.logical_and(t != 0, t != 1))):
            raise ValueError("polyloss: target must be a 0/1 multi-hot array with "
                             "target_format='multi_hot'; torch's class-index lists padded with -1 "
                             "need target_format='indices'")


def multilabel_margin(pred: Any, target: Any, *, margin: float = 1.0, target_format: str = "multi_hot",
                      reduction: str = "mean", sample_weight: Any = None,
                      normalizer: str | float | Any = "count") -> Any:
    """Multi-label hinge ``Σ_{j∈Y} Σ_{i∉Y} max(0, margin - (x_j - x_i)) / C`` per row, classes on
    the last axis (``pred`` of shape ``(..., C)``), then reduced over the rows.

    ``target`` has ``pred``'s shape, in one of two formats chosen by ``target_format`` (the
    two cannot be told apart from the values, so nothing is guessed):

    - ``"multi_hot"`` (default): 0/1 per class, the format of every other multi-label loss
      (``multilabel_soft_margin``, ``binary_cross_entropy``, Keras); any other value is a
      ``ValueError`` in eager calls (so a torch index list, which holds -1 or labels > 1, is
      refused rather than misread) and makes the row NaN under jit.
    - ``"indices"``: torch's class-index lists padded with -1 (reading stops at the first -1;
      a class listed twice counts twice, as in torch); entries outside ``[-1, C)`` are a
      ``ValueError`` in eager calls and make the row NaN under jit.

    A row whose classes are all targets, or none, has loss 0. At the hinge's kink the
    gradient is the active branch's (torch's kernel gives 0 there;
    ``polyloss.torch.MultiLabelMarginLoss`` reproduces that).

    Equivalent: ``torch.nn.MultiLabelMarginLoss`` = ``multilabel_margin(x, y,
    target_format="indices")`` (margin 1, mean over samples).
    """
    margin = _check_number("margin", margin)
    check_choice("target_format", target_format, TARGET_FORMATS)
    _check_common(reduction, normalizer)
    indices = target_format == "indices"
    with backend_of(pred, target, sample_weight, names=_NAMES).scope():
        p = prepare(pred, target, sample_weight, names=_NAMES, integer_target=indices)
        _classes_last(p)
        xp = p.xp
        num_classes = p.pred.shape[-1]
        if indices:
            check_class_labels(p.backend, p.target, num_classes, -1, "target")
            labels = as_index(p.backend, p.target)
            count = core.listed_class_count(labels, p.pred, xp)
            bad = xp.logical_or(labels < -1, labels >= num_classes)
        else:
            _check_multi_hot(p, p.target)
            count = p.target
            bad = xp.logical_and(count != 0, count != 1)
        loss = core.multilabel_margin(p.pred, count, margin, xp)
        loss = xp.where(xp.any(bad, axis=-1), float("nan"), loss)
        return finish(p, _reduce(xp, loss, reduction, p.weight, normalizer, batch=_batch_size(p.pred)))


def multilabel_soft_margin(pred: Any, target: Any, *, class_weight: Any = None, reduction: str = "mean",
                           sample_weight: Any = None, normalizer: str | float | Any = "count") -> Any:
    """Multi-label logistic loss: the BCE on logits of each class, times ``class_weight[c]``,
    averaged over the classes (the last axis), ``Σ_c w_c·(y·softplus(-x) + (1-y)·softplus(x)) / C``,
    then reduced over the rows. ``target`` is 0/1 (or soft labels in [0, 1]) of ``pred``'s shape;
    ``class_weight`` has shape ``(C,)``. Finite for every finite logit.

    Equivalents: ``torch.nn.MultiLabelSoftMarginLoss(weight=)`` (mean over samples), and, for
    unweighted 2-D input, ``torch.nn.BCEWithLogitsLoss()`` / ``binary_cross_entropy(from_logits=True)``
    (the mean over samples of means over classes is the mean over all elements).
    """
    _check_common(reduction, normalizer)
    names = _NAMES + ("class_weight",)
    with backend_of(pred, target, sample_weight, class_weight, names=names).scope():
        p = prepare(pred, target, sample_weight, names=_NAMES)
        _classes_last(p)
        xp = p.xp
        cw = prepare_extra(p, class_weight, "class_weight")
        if cw is not None and tuple(cw.shape) != (p.pred.shape[-1],):
            raise ValueError(f"polyloss: class_weight must have shape ({p.pred.shape[-1]},), got "
                             f"{tuple(cw.shape)}")
        loss = core.multilabel_soft_margin(p.pred, p.target, xp, cw)
        return finish(p, _reduce(xp, loss, reduction, p.weight, normalizer, batch=_batch_size(p.pred)))

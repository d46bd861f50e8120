"""Canonical overlap losses for segmentation: Dice, Tversky and Jaccard (IoU).

Every choice on which the anchors disagree is an argument:

- ``activation``: ``"none"`` (probabilities in), ``"sigmoid"`` (per-class logits) or
  ``"softmax"`` (logits, softmax over ``class_axis``);
- ``class_axis``: where the classes are (``1`` for ``(N, C, H, W)``, ``-1`` for channels-last,
  ``None`` for a single foreground map of ``pred``'s shape);
- ``pooling``: ``"sample"`` (one score per sample and class, MONAI's default) or ``"batch"``
  (batch and space pooled, one score per class: smp's and MONAI's ``batch=True``);
- ``smooth`` added to the numerator and denominator, or to the denominator only with
  ``smooth_numerator=False``, plus ``eps`` in the denominator;
- ``include_background=False`` drops class 0.

``target`` has ``pred``'s shape (one-hot or soft masks) or, with a class axis, is integer
class indices of ``pred``'s shape without it. The loss is ``1 - score``, averaged over the
classes that count; ``reduction`` then acts on the per-sample values (``"batch"`` pooling
gives one value).
"""

from __future__ import annotations

from typing import Any

from polyloss._inputs import finish, prepare
from polyloss._labels import as_index, check_class_labels
from polyloss.backends import backend_of
from polyloss.canonical.classification import _batch_size, _check_common, _check_number, _reduce
from polyloss.core import classification as cls_core
from polyloss.core import overlap as core
from polyloss.reduction import check_choice

__all__ = ["dice", "tversky", "jaccard"]

ACTIVATIONS = ("none", "sigmoid", "softmax")
POOLINGS = ("sample", "batch")


def _overlap(pred, target, *, alpha, beta, activation, class_axis, pooling, smooth, smooth_numerator,
             eps, include_background, reduction, sample_weight, normalizer):
    check_choice("activation", activation, ACTIVATIONS)
    check_choice("pooling", pooling, POOLINGS)
    _check_common(reduction, normalizer)
    smooth = _check_number("smooth", smooth, minimum=0.0)
    eps = _check_number("eps", eps, minimum=0.0)
    names = ("pred", "target", "sample_weight")
    with backend_of(pred, target, sample_weight, names=names).scope():
        p = prepare(pred, target, sample_weight, names=names, integer_target=True)
        xp = p.xp
        ndim = len(p.pred.shape)
        if ndim < 1:
            raise ValueError("polyloss: pred must have a batch axis")
        if class_axis is not None:
            if not -ndim < class_axis < ndim or class_axis % ndim == 0:
                raise ValueError(f"polyloss: class_axis={class_axis} must be a non-batch axis of pred "
                                 f"of shape {tuple(p.pred.shape)}")
            class_axis %= ndim
        elif activation == "softmax":
            raise ValueError("polyloss: activation='softmax' needs a class_axis")
        if pooling == "batch" and p.weight is not None:
            raise ValueError("polyloss: sample_weight has no samples to weigh with pooling='batch' "
                             "(batch and space are pooled into one score per class)")
        if not include_background and (class_axis is None or p.pred.shape[class_axis] < 2):
            raise ValueError("polyloss: include_background=False needs a class_axis with at least "
                             "2 classes")
        probs = p.pred
        if activation == "sigmoid":
            probs = cls_core.sigmoid(probs, xp)
        elif activation == "softmax":
            probs = cls_core.softmax(probs, class_axis, xp)
        t = _dense_target(p, class_axis)
        spatial = tuple(a for a in range(1, ndim) if a != class_axis)
        axes = spatial if pooling == "sample" else (0, *spatial)
        tp, fp, fn = core.soft_counts(probs, t, axes, xp)
        score = core.tversky_index(tp, fp, fn, alpha, beta, smooth if smooth_numerator else 0.0,
                                   smooth + eps, xp)
        loss = 1.0 - score  # (N, C), (N,), (C,) or ()
        if class_axis is not None:
            if not include_background:
                loss = loss[..., 1:]
            loss = xp.mean(loss, axis=-1)
        if pooling == "batch":
            return finish(p, loss)
        return finish(p, _reduce(xp, loss, reduction, p.weight, normalizer, batch=_batch_size(p.pred)))


def _dense_target(p: Any, class_axis: int | None) -> Any:
    xp = p.xp
    ndim = len(p.pred.shape)
    if tuple(p.target.shape) == tuple(p.pred.shape):
        return p.target if p.target.dtype == p.pred.dtype else xp.astype(p.target, p.pred.dtype)
    expected = tuple(d for i, d in enumerate(p.pred.shape) if i != class_axis)
    if class_axis is None or tuple(p.target.shape) != expected:
        raise ValueError(f"polyloss: target has shape {tuple(p.target.shape)}; expected pred's shape "
                         f"{tuple(p.pred.shape)}" + ("" if class_axis is None else
                                                     f" or class indices of shape {expected}"))
    num_classes = p.pred.shape[class_axis]
    check_class_labels(p.backend, p.target, num_classes, None, "target")
    labels = xp.expand_dims(as_index(p.backend, p.target), axis=class_axis)
    classes = cls_core.expand_class_axis(xp.arange(num_classes, dtype=labels.dtype), class_axis, ndim, xp)
    return xp.where(labels == classes, xp.ones_like(p.pred), 0.0)


def tversky(pred: Any, target: Any, *, alpha: float = 0.5, beta: float = 0.5, activation: str = "none",
            class_axis: int | None = None, pooling: str = "sample", smooth: float = 0.0,
            smooth_numerator: bool = True, eps: float = 1e-7, include_background: bool = True,
            reduction: str = "mean", sample_weight: Any = None, normalizer: str = "count") -> Any:
    """Tversky loss ``1 - (TP + s)/(TP + α·FP + β·FN + s + eps)`` (Salehi et al. 2017), with
    ``FP = Σ p(1-t)`` and ``FN = Σ (1-p)t``; see the module for the pooling and class options.

    Equivalents: ``keras.losses.Tversky`` (whose ``alpha`` weights ``Σ(1-ŷ)y``, i.e. our β),
    ``optax.losses.dice_loss(alpha=, beta=)``, smp/MONAI ``TverskyLoss``.
    """
    alpha = _check_number("alpha", alpha, minimum=0.0)
    beta = _check_number("beta", beta, minimum=0.0)
    return _overlap(pred, target, alpha=alpha, beta=beta, activation=activation, class_axis=class_axis,
                    pooling=pooling, smooth=smooth, smooth_numerator=smooth_numerator, eps=eps,
                    include_background=include_background, reduction=reduction,
                    sample_weight=sample_weight, normalizer=normalizer)


def dice(pred: Any, target: Any, *, activation: str = "none", class_axis: int | None = None,
         pooling: str = "sample", smooth: float = 0.0, smooth_numerator: bool = True, eps: float = 1e-7,
         include_background: bool = True, reduction: str = "mean", sample_weight: Any = None,
         normalizer: str = "count") -> Any:
    """Soft Dice loss ``1 - (2·TP + 2s)/(2·TP + FP + FN + 2s + 2·eps)``, i.e. Tversky at
    α = β = ½: ``1 - (Σpt + s)/(½(Σp + Σt) + s + eps)``.

    Equivalents: ``keras.losses.Dice`` (whole-array pooling, ``eps`` only), ``optax.losses.dice_loss``
    (smooth 1, softmax, per sample), smp/MONAI ``DiceLoss``.
    """
    return _overlap(pred, target, alpha=0.5, beta=0.5, activation=activation, class_axis=class_axis,
                    pooling=pooling, smooth=smooth, smooth_numerator=smooth_numerator, eps=eps,
                    include_background=include_background, reduction=reduction,
                    sample_weight=sample_weight, normalizer=normalizer)


def jaccard(pred: Any, target: Any, *, activation: str = "none", class_axis: int | None = None,
            pooling: str = "sample", smooth: float = 0.0, smooth_numerator: bool = True,
            eps: float = 1e-7, include_background: bool = True, reduction: str = "mean",
            sample_weight: Any = None, normalizer: str = "count") -> Any:
    """Soft Jaccard (IoU) loss ``1 - (TP + s)/(TP + FP + FN + s + eps)`` (Tversky at α = β = 1).
    Equivalent: smp ``JaccardLoss``."""
    return _overlap(pred, target, alpha=1.0, beta=1.0, activation=activation, class_axis=class_axis,
                    pooling=pooling, smooth=smooth, smooth_numerator=smooth_numerator, eps=eps,
                    include_background=include_background, reduction=reduction,
                    sample_weight=sample_weight, normalizer=normalizer)

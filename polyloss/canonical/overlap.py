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

import math
from typing import Any

from polyloss._inputs import check_probabilities, check_same_shape, finish, prepare, values_checked
from polyloss._labels import as_index, check_class_labels
from polyloss.backends import backend_of
from polyloss.canonical.classification import _batch_size, _check_common, _check_number, _reduce
from polyloss.core import classification as cls_core
from polyloss.core import overlap as core
from polyloss.core._helpers import arange_like
from polyloss.core.margin import hinge_part
from polyloss.reduction import check_choice

__all__ = ["dice", "tversky", "jaccard", "lovasz_hinge", "lovasz_softmax"]

ACTIVATIONS = ("none", "sigmoid", "softmax")
_LOGITS_HINT = "; pass activation='softmax' or 'sigmoid' for logits"
POOLINGS = ("sample", "batch")


def _overlap(pred, target, *, alpha, beta, activation, class_axis, pooling, smooth, smooth_numerator,
             eps, include_background, reduction, sample_weight, normalizer):
    check_choice("activation", activation, ACTIVATIONS)
    check_choice("pooling", pooling, POOLINGS)
    _check_common(reduction, normalizer)
    _check_batch_pooling_mean(pooling, reduction, normalizer)
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
        if activation == "none":
            check_probabilities(p.backend, probs, "pred", hint=_LOGITS_HINT)
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
    class_ids = arange_like(num_classes, labels, labels.dtype, xp)
    classes = cls_core.expand_class_axis(class_ids, class_axis, ndim, xp)
    return xp.where(labels == classes, xp.ones_like(p.pred), 0.0)


def tversky(pred: Any, target: Any, *, alpha: float = 0.5, beta: float = 0.5, activation: str = "none",
            class_axis: int | None = None, pooling: str = "sample", smooth: float = 0.0,
            smooth_numerator: bool = True, eps: float = 1e-7, include_background: bool = True,
            reduction: str = "mean", sample_weight: Any = None,
            normalizer: str | float | Any = "count") -> Any:
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
         normalizer: str | float | Any = "count") -> Any:
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
            sample_weight: Any = None, normalizer: str | float | Any = "count") -> Any:
    """Soft Jaccard (IoU) loss ``1 - (TP + s)/(TP + FP + FN + s + eps)`` (Tversky at α = β = 1).
    Equivalent: smp ``JaccardLoss``."""
    return _overlap(pred, target, alpha=1.0, beta=1.0, activation=activation, class_axis=class_axis,
                    pooling=pooling, smooth=smooth, smooth_numerator=smooth_numerator, eps=eps,
                    include_background=include_background, reduction=reduction,
                    sample_weight=sample_weight, normalizer=normalizer)


# ---- Lovász losses ----------------------------------------------------------------------------
# Berman, Triki & Blaschko, "The Lovász-Softmax loss: A tractable surrogate for the optimization
# of the intersection-over-union measure in neural networks", CVPR 2018. The loss is the Lovász
# extension of the Jaccard loss evaluated at a vector of per-pixel errors: sort the errors in
# decreasing order, weigh the k-th by J_k - J_{k-1} (J_k: the Jaccard loss if the k largest
# errors were the mistakes) and sum (``polyloss.core.overlap.lovasz``).

_LOVASZ_CLASSES = ("present", "all")


def _check_ignore_index(ignore_index: Any) -> int | None:
    if ignore_index is not None and (not isinstance(ignore_index, int) or isinstance(ignore_index, bool)):
        raise ValueError(f"polyloss: ignore_index must be an integer or None, got {ignore_index!r}")
    return ignore_index


def _flat_size(shape: tuple) -> int:
    if any(d is None for d in shape):
        raise ValueError("polyloss: the Lovász losses need static shapes (after the batch axis)")
    return math.prod(shape)


def _lovasz_setup(pooling: str,
                  reduction: str, normalizer: str | float | Any, ignore_index: Any) -> int | None:
    check_choice("pooling", pooling, POOLINGS)
    _check_common(reduction, normalizer)
    _check_batch_pooling_mean(pooling, reduction, normalizer)
    return _check_ignore_index(ignore_index)


def _check_batch_pooling_mean(pooling: str, reduction: str, normalizer: Any) -> None:
    # a batch-pooled score is not a sum over samples: no split of the batch adds up to it
    if pooling == "batch" and (reduction == "parts" or not isinstance(normalizer, str)):
        raise ValueError("polyloss: pooling='batch' pools the whole batch into one score, which "
                         "does not split into per-sample parts; reduction='parts' and a "
                         "normalizer value need pooling='sample'")


def _lovasz_finish(p: Any, loss: Any, pooling: str, reduction: str, normalizer: str | float | Any) -> Any:
    xp = p.xp
    if pooling == "batch":
        return finish(p, xp.reshape(loss, ()))
    return finish(p, _reduce(xp, loss, reduction, p.weight, normalizer, batch=_batch_size(p.pred)))


def lovasz_hinge(pred: Any, target: Any, *, pooling: str = "sample", ignore_index: int | None = None,
                 reduction: str = "mean", sample_weight: Any = None,
                 normalizer: str | float | Any = "count") -> Any:
    """Binary Lovász hinge loss (Berman et al. 2018, eq. 10) on logits.

    Per sample (``pooling="sample"``, every non-batch axis flattened) or over the whole batch
    (``pooling="batch"``, one value; ``sample_weight`` is then refused): with signs
    ``s = 2y - 1`` and hinge errors ``e = max(0, 1 - x·s)``, sorted in decreasing order,
    ``loss = Σ_k e_(k)·(J_k - J_{k-1})``, ``J_k = 1 - (P - cumsum(y)_k) / (P + cumsum(1 - y)_k)``
    with ``P = Σy`` (the Lovász extension of the Jaccard loss of the foreground). ``target``
    has ``pred``'s shape and holds 0 or 1 (or ``ignore_index``): other values are a
    ``ValueError`` in eager calls and make the sample's loss NaN under jit. Pixels equal to
    ``ignore_index`` leave every count; a sample whose pixels are all ignored has loss 0 (and
    still counts in the mean, as in the reference). A sample with no foreground has loss
    ``max(e)`` (the weights are 1, 0, 0, ...).

    Choices where the anchors differ: the reference implementation's ``lovasz_hinge`` is per
    image by default (``per_image=True`` ↔ ``pooling="sample"``); smp's ``LovaszLoss`` pools the
    batch by default (``pooling="batch"``). Errors are sorted by a stable sort, so tied errors
    keep their memory order and the gradient at ties is the same on every backend (torch's
    unstable sort in the reference can give another subgradient); at ``e = 0`` the gradient is
    the active branch's (the reference's ``relu`` gives 0; both are subgradients). The value
    does not depend on either choice.

    Equivalents: ``lovasz_hinge(logits, labels, per_image=True, ignore=None)`` of the reference
    implementation (github.com/bermanmaxim/LovaszSoftmax); smp ``LovaszLoss("binary")``
    (``pooling="batch"``). No framework ships it.
    """
    ignore_index = _lovasz_setup(pooling, reduction, normalizer, ignore_index)
    names = ("pred", "target", "sample_weight")
    with backend_of(pred, target, sample_weight, names=names).scope():
        p = prepare(pred, target, sample_weight, names=names)
        xp = p.xp
        if len(p.pred.shape) == 0:
            raise ValueError("polyloss: pred must have a batch axis, got a 0-d array")
        check_same_shape(p.pred, p.target, names[:2])
        if pooling == "batch" and p.weight is not None:
            raise ValueError("polyloss: sample_weight has no samples to weigh with pooling='batch'")
        t = p.target
        fg = t == 1
        ok = xp.logical_or(fg, t == 0)
        valid = None
        if ignore_index is not None:
            valid = t != float(ignore_index)
            ok = xp.logical_or(ok, xp.logical_not(valid))
        if values_checked(p.backend, t) and not bool(xp.all(ok)):
            extra = "" if ignore_index is None else f" or ignore_index={ignore_index}"
            raise ValueError(f"polyloss: target must hold 0 or 1{extra} (binary masks)")
        if valid is not None:
            fg = xp.logical_and(fg, valid)
        size = _flat_size(tuple(p.pred.shape[1:]))
        rows = (1, p.pred.shape[0] * size) if pooling == "batch" else (p.pred.shape[0], size)
        x = xp.reshape(p.pred, rows)
        gt = xp.reshape(xp.astype(fg, x.dtype), rows)
        raw = 1.0 - x * (2.0 * gt - 1.0)  # hinge argument (margin 1); signs from the 0/1 truth
        errors = hinge_part(raw, xp)
        if valid is None:
            loss = core.lovasz(errors, raw, gt, xp.ones_like(x), xp)
        else:
            v = xp.reshape(valid, rows)
            loss = core.lovasz(xp.where(v, errors, 0.0), xp.where(v, raw, -math.inf), gt,
                               xp.astype(v, x.dtype), xp)
        loss = xp.where(xp.all(xp.reshape(ok, rows), axis=-1), loss, math.nan)
        return _lovasz_finish(p, loss, pooling, reduction, normalizer)


def lovasz_softmax(pred: Any, target: Any, *, activation: str = "none", class_axis: int = 1,
                   classes: Any = "present", pooling: str = "sample", ignore_index: int | None = None,
                   reduction: str = "mean", sample_weight: Any = None,
                   normalizer: str | float | Any = "count") -> Any:
    """Multi-class Lovász-Softmax loss (Berman et al. 2018, eq. 12).

    ``pred`` has a class axis ``class_axis`` (1 for ``(N, C, H, W)``, -1 for channels-last) and
    holds probabilities (``activation="none"``, the reference's input: values outside [0, 1]
    are a ``ValueError`` in eager calls, which catches logits passed by mistake), or logits
    (``"softmax"`` over the class axis, smp's ``LovaszLoss("multiclass")``; ``"sigmoid"`` per
    class). ``target`` holds integer class indices of ``pred``'s shape without the class axis.
    For each class ``c``, errors ``e = |[y = c] - p_c|`` over the pixels of a sample
    (``pooling="sample"``) or of the batch (``"batch"``, one value) give the Lovász extension
    of that class's Jaccard loss (``polyloss.lovasz_hinge``'s formula with these errors); the
    loss is its mean over ``classes``:

    - ``"present"`` (default): the classes with at least one (non-ignored) pixel in the sample
      (batch); 0 when there is none (all pixels ignored);
    - ``"all"``: every class (an absent class contributes ``max_i p_c``);
    - a sequence of class indices: those classes, present or not.

    Pixels labelled ``ignore_index`` leave every count; labels outside ``[0, C)`` are a
    ``ValueError`` in eager calls and make the sample's loss NaN under jit.

    Choices where the anchors differ: the reference's ``lovasz_softmax`` (probabilities in,
    ``classes='present'``, ``per_image=False``) is ``lovasz_softmax(p, y, pooling="batch")``;
    smp's ``LovaszLoss("multiclass")`` (softmax of logits, batch pooled, ``from_logits``
    ignored) is ``activation="softmax", pooling="batch"``. The default here is per sample, as
    the other overlap losses, so that ``sample_weight`` and ``reduction`` apply. Ties among
    errors are ordered by a stable sort (the same gradient on every backend).
    """
    ignore_index = _lovasz_setup(pooling, reduction, normalizer, ignore_index)
    check_choice("activation", activation, ACTIVATIONS)
    names = ("pred", "target", "sample_weight")
    with backend_of(pred, target, sample_weight, names=names).scope():
        p = prepare(pred, target, sample_weight, names=names, integer_target=True)
        xp = p.xp
        ndim = len(p.pred.shape)
        if ndim < 2:
            raise ValueError(f"polyloss: pred must have a batch and a class axis, got shape "
                             f"{tuple(p.pred.shape)}")
        if not isinstance(class_axis, int) or not -ndim <= class_axis < ndim or class_axis % ndim == 0:
            raise ValueError(f"polyloss: class_axis={class_axis!r} must be a non-batch axis of pred "
                             f"of shape {tuple(p.pred.shape)}")
        class_axis %= ndim
        num_classes = p.pred.shape[class_axis]
        expected = tuple(d for i, d in enumerate(p.pred.shape) if i != class_axis)
        if tuple(p.target.shape) != expected:
            raise ValueError(f"polyloss: target holds class indices and must have shape {expected}, "
                             f"got {tuple(p.target.shape)}")
        selected = _lovasz_classes(classes, num_classes)
        if pooling == "batch" and p.weight is not None:
            raise ValueError("polyloss: sample_weight has no samples to weigh with pooling='batch'")
        check_class_labels(p.backend, p.target, num_classes, ignore_index, "target")
        safe, valid, in_range = cls_core.safe_labels(as_index(p.backend, p.target), num_classes,
                                                     ignore_index, xp)
        probs = p.pred
        if activation == "softmax":
            probs = cls_core.softmax(probs, class_axis, xp)
        elif activation == "sigmoid":
            probs = cls_core.sigmoid(probs, xp)
        else:
            check_probabilities(p.backend, probs, "pred", hint=_LOGITS_HINT)
        n = p.pred.shape[0]
        size = _flat_size(expected[1:])
        # (N, C, P): classes second, pixels last
        perm = (0, class_axis) + tuple(a for a in range(1, ndim) if a != class_axis)
        probs = xp.reshape(xp.permute_dims(probs, perm), (n, num_classes, size))
        labels = xp.reshape(safe, (n, 1, size))
        counted = xp.reshape(valid, (n, 1, size))
        known = xp.reshape(in_range, (n, size))
        if pooling == "batch":  # (1, C, N·P)
            probs = xp.reshape(xp.permute_dims(probs, (1, 0, 2)), (1, num_classes, n * size))
            labels = xp.reshape(labels, (1, 1, n * size))
            counted = xp.reshape(counted, (1, 1, n * size))
            known = xp.reshape(known, (1, n * size))
        class_ids = xp.reshape(arange_like(num_classes, labels, labels.dtype, xp), (1, num_classes, 1))
        fg = xp.logical_and(labels == class_ids, counted)
        gt = xp.astype(fg, probs.dtype)
        v = xp.broadcast_to(counted, tuple(probs.shape))
        errors = xp.where(v, xp.where(fg, 1.0 - probs, probs), 0.0)
        per_class = core.lovasz(errors, xp.where(v, errors, -math.inf), gt, xp.astype(v, probs.dtype), xp)
        if isinstance(selected, str):  # (rows, C) -> mean over the classes that count
            use = xp.sum(gt, axis=-1) > 0 if selected == "present" else xp.ones_like(per_class) > 0
        else:
            ids = xp.reshape(arange_like(num_classes, labels, labels.dtype, xp), (1, num_classes))
            use = ids == selected[0]
            for c in selected[1:]:
                use = xp.logical_or(use, ids == c)
            use = xp.broadcast_to(use, tuple(per_class.shape))
        count = xp.sum(xp.astype(use, probs.dtype), axis=-1)
        total = xp.sum(xp.where(use, per_class, 0.0), axis=-1)
        loss = xp.where(count > 0, total / xp.where(count > 0, count, 1.0), 0.0)
        loss = xp.where(xp.all(known, axis=-1), loss, math.nan)
        return _lovasz_finish(p, loss, pooling, reduction, normalizer)


def _lovasz_classes(classes: Any, num_classes: int) -> Any:
    if isinstance(classes, str):
        check_choice("classes", classes, _LOVASZ_CLASSES)
        return classes
    try:
        chosen = tuple(classes)
    except TypeError:
        chosen = None
    if (not chosen or any(not isinstance(c, int) or isinstance(c, bool) or not 0 <= c < num_classes
                          for c in chosen) or len(set(chosen)) != len(chosen)):
        raise ValueError(f"polyloss: classes must be 'present', 'all' or a non-empty sequence of "
                         f"distinct class indices in [0, {num_classes}), got {classes!r}")
    return chosen

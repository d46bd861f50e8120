"""Canonical probabilistic classification losses: one definition, the same numbers everywhere.

Signature: ``loss(pred, target, *, ..., reduction="mean", sample_weight=None, normalizer=...)``,
prediction first. Reductions: ``"none"``, ``"sum"``, ``"mean"`` and ``"batchmean"`` (the sum
divided by ``pred.shape[0]``). Class-index targets are checked in eager calls (a label
outside ``[0, C)`` that is not ``ignore_index`` is a ``ValueError``); under jit, where values
cannot be read, such a position's loss is NaN. Probabilities are turned into logs with an
explicit floor, ``log_clamp`` (torch's -100 by default; ``None`` for the bare log).
float16/bfloat16 inputs are computed in float32 and returned in their own dtype.
"""

from __future__ import annotations

import math
from typing import Any

from polyloss._inputs import (
    check_non_negative,
    check_probabilities,
    check_same_shape,
    finish,
    prepare,
    prepare_extra,
    same_shape,
    values_checked,
)
from polyloss._labels import as_index, check_class_labels
from polyloss.backends import backend_of
from polyloss.core import classification as core
from polyloss.reduction import (
    NORMALIZERS,
    align_weight,
    check_choice,
    check_normalizer,
    check_reduction,
    normalized,
    static_size,
)

__all__ = [
    "binary_cross_entropy", "cross_entropy", "nll", "focal", "poly1_cross_entropy", "kl_div",
    "poisson_nll", "gaussian_nll",
]

REDUCTIONS = ("none", "sum", "mean", "batchmean")
CLASS_NORMALIZERS = ("valid_count", "count", "sum_of_weights")
ALL_IGNORED = ("zero", "nan")
_NAMES = ("pred", "target", "sample_weight")
_LOGITS_HINT = "; pass from_logits=True for logits"


# ---- reductions -------------------------------------------------------------------------

def _batch_size(pred: Any) -> int:
    return 1 if len(pred.shape) == 0 else pred.shape[0]


def _reduce(xp: Any, loss: Any, reduction: str, sample_weight: Any, normalizer: str | float | Any, *,
            batch: Any, counted: Any = None, position_weight: Any = None,
            if_all_ignored: str = "nan") -> Any:
    """Reduce per-position ``loss`` (already 0 where a position does not count).

    ``counted`` marks the positions that count (``None``: all); ``position_weight`` is the
    class weight of each position (``None``: 1). ``"mean"`` divides the weighted sum by the
    number of positions (``"count"``), of counted positions (``"valid_count"``), or by the
    summed weights of the counted positions (``"sum_of_weights"``), or by ``normalizer`` itself
    when it is a value (a global normaliser); ``"parts"`` returns the total and the local
    normaliser. With nothing counted the mean is 0 or NaN as ``if_all_ignored`` says.
    """
    weight = None
    if sample_weight is not None:
        weight = align_weight(xp, sample_weight, tuple(loss.shape))
        loss = loss * weight
    if reduction == "none":
        return loss
    plain = isinstance(normalizer, str) and _every_position_counts(
        normalizer, counted, position_weight, weight)
    if reduction == "mean" and plain and static_size(loss):
        return xp.mean(loss)  # Σ loss / (number of positions), as one reduction
    total = xp.sum(loss)
    if reduction == "sum":
        return total
    if reduction == "batchmean":
        if batch is None:
            raise ValueError("polyloss: reduction='batchmean' needs a static batch size")
        return total / batch if batch else total * math.nan
    fill = 0.0 if if_all_ignored == "zero" else math.nan
    if not isinstance(normalizer, str):  # a given (global) normaliser
        return normalized(xp, total, reduction, normalizer, None, fill=fill)
    if plain:
        size = static_size(loss)
        denom = xp.sum(xp.ones_like(loss)) if size is None else size
    else:
        ones = xp.ones_like(loss)
        w = ones if counted is None else xp.where(counted, ones, 0.0)
        if normalizer == "sum_of_weights":
            if position_weight is not None:
                w = w * position_weight
            if weight is not None:
                w = w * weight
        denom = xp.sum(w)
    return normalized(xp, total, reduction, normalizer, denom, fill=fill)


def _every_position_counts(normalizer: str | float | Any,
                           counted: Any, position_weight: Any, weight: Any) -> bool:
    """Whether the normaliser is the number of positions (each counts, with weight 1)."""
    return normalizer == "count" or counted is None and (
        normalizer == "valid_count" or position_weight is None and weight is None)


def _check_common(reduction: str, normalizer: Any, normalizers: tuple = NORMALIZERS) -> None:
    check_reduction(reduction, REDUCTIONS)
    check_normalizer(normalizer, normalizers, reduction)


def _check_unit(name: str, value: Any, *, upper_open: bool = False) -> float:
    ok = isinstance(value, (int, float)) and 0.0 <= value <= 1.0 and not (upper_open and value == 1)
    if not ok:
        raise ValueError(f"polyloss: {name} must be a number in [0, 1], got {value!r}")
    return float(value)


def _check_number(name: str, value: Any, *, minimum: float | None = None) -> float:
    if not isinstance(value, (int, float)) or (minimum is not None and not value >= minimum):
        bound = "" if minimum is None else f" >= {minimum}"
        raise ValueError(f"polyloss: {name} must be a number{bound}, got {value!r}")
    return float(value)


def _check_log_clamp(log_clamp: Any) -> float | None:
    if log_clamp is None:
        return None
    if not isinstance(log_clamp, (int, float)) or not log_clamp < 0:
        raise ValueError(f"polyloss: log_clamp must be a negative number or None, got {log_clamp!r}")
    return float(log_clamp)


# ---- binary -----------------------------------------------------------------------------

def _binary_inputs(pred, target, sample_weight, label_smoothing, pos_weight, names=_NAMES):
    p = prepare(pred, target, sample_weight, names=names)
    check_same_shape(p.pred, p.target, names[:2])
    y = p.target
    if label_smoothing:
        y = y * (1.0 - label_smoothing) + 0.5 * label_smoothing
    pw = prepare_extra(p, pos_weight, "pos_weight")
    if pw is not None:
        pw = align_weight(p.xp, pw, tuple(p.pred.shape), "pos_weight", prefix=False)
    return p, y, pw


def binary_cross_entropy(
    pred: Any, target: Any, *, from_logits: bool = False, pos_weight: Any = None,
    label_smoothing: float = 0.0, log_clamp: float | None = -100.0, reduction: str = "mean",
    sample_weight: Any = None, normalizer: str | float | Any = "count",
) -> Any:
    """Binary cross-entropy ``-(P·y·log p + (1-y)·log(1-p))``, elementwise, reduced.

    ``from_logits=True``: ``pred`` are logits and the loss is computed as
    ``P·y·softplus(-z) + (1-y)·softplus(z)``, finite for any finite logit (±1e4 included),
    gradient ``σ(z) - y``. ``from_logits=False``: ``pred`` are probabilities and each log is
    floored at ``log_clamp`` (torch's -100: a loss of at most 100 per element; ``None`` for
    the bare log). ``pos_weight`` (``P``) multiplies the positive term and broadcasts against
    ``pred`` (a per-class vector on the last axis, as torch). ``label_smoothing=ε`` uses
    ``y(1-ε) + ε/2`` (Keras's rule).

    Equivalents: ``torch.nn.BCELoss`` / ``BCEWithLogitsLoss(pos_weight=)``,
    ``keras.losses.BinaryCrossentropy`` (which clips at 1e-7 instead),
    ``gluon.loss.SigmoidBCELoss`` (mean of its per-sample values),
    ``optax.losses.sigmoid_binary_cross_entropy(...).mean()``.
    """
    _check_common(reduction, normalizer)
    label_smoothing = _check_unit("label_smoothing", label_smoothing)
    log_clamp = _check_log_clamp(log_clamp)
    names = _NAMES + ("pos_weight",)
    with backend_of(pred, target, sample_weight, pos_weight, names=names).scope():
        p, y, pw = _binary_inputs(pred, target, sample_weight, label_smoothing, pos_weight)
        xp = p.xp
        if from_logits:
            loss = core.sigmoid_bce_with_logits(p.pred, y, xp, pw)
        else:
            check_probabilities(p.backend, p.pred, "pred", hint=_LOGITS_HINT)
            loss = core.bce_on_probabilities(p.pred, y, log_clamp, xp, pw)
        return finish(p, _reduce(xp, loss, reduction, p.weight, normalizer, batch=_batch_size(p.pred)))


def _binary_focal(pred, target, *, gamma, alpha, from_logits, label_smoothing, log_clamp,
                  reduction, sample_weight, normalizer):
    with backend_of(pred, target, sample_weight, names=_NAMES).scope():
        p, y, _ = _binary_inputs(pred, target, sample_weight, label_smoothing, None)
        xp = p.xp
        if from_logits:
            bce = core.sigmoid_bce_with_logits(p.pred, y, xp)
            prob = core.sigmoid(p.pred, xp)
        else:
            check_probabilities(p.backend, p.pred, "pred", hint=_LOGITS_HINT)
            bce = core.bce_on_probabilities(p.pred, y, log_clamp, xp)
            prob = p.pred
        p_t = prob * y + (1.0 - prob) * (1.0 - y)
        loss = core.focal_factor(p_t, gamma, xp) * bce
        if alpha is not None:
            loss = (alpha * y + (1.0 - alpha) * (1.0 - y)) * loss
        return finish(p, _reduce(xp, loss, reduction, p.weight, normalizer, batch=_batch_size(p.pred)))


# ---- categorical ------------------------------------------------------------------------

def _categorical(
    pred: Any, target: Any, *, input_kind: str, loss_kind: str, axis: int, class_weight: Any,
    ignore_index: int | None, label_smoothing: float, log_clamp: float | None, reduction: str,
    sample_weight: Any, normalizer: str | float | Any, if_all_ignored: str, poly_epsilon: float = 0.0,
    gamma: float = 0.0, alpha: Any = None, names: tuple = _NAMES,
    class_weight_name: str = "class_weight", zero_mass_is_zero: bool = True,
) -> Any:
    """Every softmax-family loss: cross-entropy, NLL, Poly-1 and categorical focal, for
    class-index or probability targets along ``axis``."""
    _check_common(reduction, normalizer, CLASS_NORMALIZERS)
    check_choice("if_all_ignored", if_all_ignored, ALL_IGNORED)
    label_smoothing = _check_unit("label_smoothing", label_smoothing)
    if not isinstance(axis, int) or isinstance(axis, bool):
        raise TypeError(f"polyloss: axis must be an int, got {axis!r}")
    if ignore_index is not None and (not isinstance(ignore_index, int) or isinstance(ignore_index, bool)):
        raise TypeError(f"polyloss: ignore_index must be an int or None, got {ignore_index!r}")
    all_names = names + (class_weight_name, "alpha")
    backend = backend_of(pred, target, sample_weight, class_weight, alpha, names=all_names)
    with backend.scope():
        p = prepare(pred, target, sample_weight, names=names, integer_target=True)
        xp = p.xp
        ndim = len(p.pred.shape)
        if ndim == 0:
            raise ValueError(f"polyloss: {names[0]} must have a class axis, got a 0-d array")
        if not -ndim <= axis < ndim:
            raise ValueError(f"polyloss: axis={axis} is out of range for {names[0]} of shape "
                             f"{tuple(p.pred.shape)}")
        axis %= ndim
        num_classes = p.pred.shape[axis]
        if num_classes is None:
            raise ValueError(f"polyloss: the class axis of {names[0]} must have a static size")

        cw = _class_vector(p, class_weight, class_weight_name, num_classes, axis, ndim)
        alpha_b = _class_vector(p, alpha, "alpha", num_classes, axis, ndim)

        if loss_kind == "ce" and input_kind != "probs" and len(p.target.shape) == ndim - 1:
            # the common case, on a path of its own (the same values, fewer passes)
            loss, counted, position_weight = _index_cross_entropy(
                p, input_kind, cw, axis, num_classes, ignore_index, label_smoothing, names)
            return finish(p, _reduce(xp, loss, reduction, p.weight, normalizer,
                                     batch=_batch_size(p.pred), counted=counted,
                                     position_weight=position_weight,
                                     if_all_ignored=if_all_ignored))

        if input_kind == "logits":
            logp = core.log_softmax(p.pred, axis, xp)
            prob = xp.exp(logp) if loss_kind != "ce" else None
        elif input_kind == "probs":
            check_probabilities(p.backend, p.pred, names[0], hint=_LOGITS_HINT)
            logp = core.clamped_log(p.pred, log_clamp, xp)
            prob = p.pred
        else:  # log-probabilities
            logp = p.pred
            prob = xp.exp(logp) if loss_kind != "ce" else None

        # per class: the term that a target mass of 1 on that class costs
        term = -logp
        if loss_kind == "focal":
            term = core.focal_factor(prob, gamma, xp) * term
            if alpha_b is not None:
                term = alpha_b * term
        if cw is not None:
            term = cw * term

        eps = label_smoothing
        # the rank decides: one less than pred's is class indices (any dtype), equal is
        # probabilities
        if len(p.target.shape) == ndim - 1:
            loss, counted, position_weight = _index_target_loss(
                p, term, prob, cw, axis, num_classes, ignore_index, eps, loss_kind, poly_epsilon,
                names)
        else:
            if not same_shape(p.pred, p.target):
                indices = tuple(d for i, d in enumerate(p.pred.shape) if i != axis)
                raise ValueError(
                    f"polyloss: {names[1]} has shape {tuple(p.target.shape)}; expected class "
                    f"indices of shape {indices} ({names[0]}'s shape {tuple(p.pred.shape)} without "
                    f"the class axis {axis}) or probabilities of {names[0]}'s shape")
            if ignore_index is not None:
                raise ValueError("polyloss: ignore_index applies to class-index targets, not to "
                                 "probability targets")
            if p.target.dtype != p.pred.dtype:
                p = p._replace(target=xp.astype(p.target, p.pred.dtype))
            q = p.target
            if eps:
                q = q * (1.0 - eps) + eps / num_classes
            # a zero target mass contributes exactly 0, also against a -inf log-probability
            weighted = xp.where(q == 0, 0.0, q * term) if zero_mass_is_zero else q * term
            loss = xp.sum(weighted, axis=axis)
            if loss_kind == "poly1":
                loss = loss + poly_epsilon * (1.0 - xp.sum(q * prob, axis=axis))
            counted = None
            # the weight of a position comes from the unsmoothed target, so that a one-hot
            # target weighs what its class index does
            position_weight = None if cw is None else xp.sum(cw * p.target, axis=axis)
        out = _reduce(xp, loss, reduction, p.weight, normalizer, batch=_batch_size(p.pred),
                      counted=counted, position_weight=position_weight,
                      if_all_ignored=if_all_ignored)
        return finish(p, out)


def _class_vector(p, v, name, num_classes, axis, ndim):
    """A per-class vector (or a scalar) shaped to broadcast along the class axis."""
    if v is None:
        return None
    v = prepare_extra(p, v, name)
    if len(v.shape) == 0:
        return v
    if tuple(v.shape) != (num_classes,):
        raise ValueError(f"polyloss: {name} must have shape ({num_classes},) (one value per class), "
                         f"got shape {tuple(v.shape)}")
    return core.expand_class_axis(v, axis, ndim, p.xp)


def _class_indices(p, axis, num_classes, ignore_index, names):
    """``(safe, valid, in_range)`` for class-index targets (see ``core.safe_labels``), after
    the shape check and the eager label check; a mask is ``None`` where that check showed it
    to be all true (the labels then need no masking: every call with valid labels)."""
    xp = p.xp
    expected = tuple(d for i, d in enumerate(p.pred.shape) if i != axis)
    if not _dims_match(tuple(p.target.shape), expected):
        raise ValueError(
            f"polyloss: {names[1]} holds class indices, so its shape must be {names[0]}'s shape "
            f"without the class axis {axis}: expected {expected}, got {tuple(p.target.shape)}"
        )
    inside = check_class_labels(p.backend, p.target, num_classes, ignore_index, names[1])
    labels = as_index(p.backend, p.target, checked=inside)
    if not inside:
        return core.safe_labels(labels, num_classes, ignore_index, xp)
    if ignore_index is None or not 0 <= ignore_index < num_classes:
        return labels, None, None
    return labels, labels != ignore_index, None


def _masked(xp, loss, valid, in_range):
    if valid is not None and valid is not in_range:  # (the same mask: only NaN remains)
        loss = xp.where(valid, loss, 0.0)
    if in_range is not None:
        loss = xp.where(in_range, loss, math.nan)
    return loss


def _position_weight(xp, cw, shape, safe, axis):
    """Each position's class weight (a 0-d ``cw`` is every position's)."""
    if not len(cw.shape):
        return cw
    return core.take_class(xp.broadcast_to(cw, shape), safe, axis, xp)


def _index_target_loss(p, term, prob, cw, axis, num_classes, ignore_index, eps, loss_kind,
                       poly_epsilon, names):
    xp = p.xp
    safe, valid, in_range = _class_indices(p, axis, num_classes, ignore_index, names)
    loss = core.take_class(term, safe, axis, xp)
    if eps:
        loss = (1.0 - eps) * loss + (eps / num_classes) * xp.sum(term, axis=axis)
    if loss_kind == "poly1":
        p_t = core.take_class(prob, safe, axis, xp)
        if eps:
            p_t = (1.0 - eps) * p_t + (eps / num_classes) * xp.sum(prob, axis=axis)
        loss = loss + poly_epsilon * (1.0 - p_t)
    loss = _masked(xp, loss, valid, in_range)
    position_weight = None if cw is None else _position_weight(xp, cw, tuple(term.shape), safe, axis)
    return loss, valid, position_weight


def _index_cross_entropy(p, input_kind, cw, axis, num_classes, ignore_index, eps, names):
    """What ``_index_target_loss`` computes for cross-entropy and NLL (logits or
    log-probabilities), with fewer passes over ``(N, C)``: ``-log q`` at the label is gathered
    and then weighted (the same products), no per-class term matrix is built, and logits
    without smoothing go through the namespace's fused softmax cross-entropy."""
    xp = p.xp
    safe, valid, in_range = _class_indices(p, axis, num_classes, ignore_index, names)
    if input_kind == "logits" and not eps:
        loss = core.softmax_cross_entropy(p.pred, safe, axis, xp)
    else:
        logp = core.log_softmax(p.pred, axis, xp) if input_kind == "logits" else p.pred
        loss = -core.take_class(logp, safe, axis, xp)
    position_weight = None
    if cw is not None:
        position_weight = _position_weight(xp, cw, tuple(p.pred.shape), safe, axis)
        loss = loss * position_weight
    if eps:  # Σ_c w_c·(-log q_c), as the mean over classes of the smoothed target
        loss = (1.0 - eps) * loss - (eps / num_classes) * xp.sum(
            logp if cw is None else cw * logp, axis=axis)
    return _masked(xp, loss, valid, in_range), valid, position_weight


def _dims_match(a: tuple, b: tuple) -> bool:
    return len(a) == len(b) and all(x == y or x is None or y is None for x, y in zip(a, b, strict=True))


def cross_entropy(
    pred: Any, target: Any, *, from_logits: bool = True, axis: int = -1, class_weight: Any = None,
    ignore_index: int | None = None, label_smoothing: float = 0.0,
    log_clamp: float | None = -100.0, reduction: str = "mean", sample_weight: Any = None,
    normalizer: str | float | Any = "valid_count", if_all_ignored: str = "zero",
) -> Any:
    """Softmax cross-entropy along ``axis``, for class-index or probability targets.

    Per position, with ``w`` the ``class_weight`` (1 if ``None``) and ``log q = log_softmax``
    of the logits (or the clamped log of probabilities when ``from_logits=False``):

    - class index ``y``: ``(1-ε)·w_y·(-log q_y) + (ε/C)·Σ_c w_c·(-log q_c)`` (torch's
      smoothing, class weights on both terms);
    - probabilities ``t`` (``pred``'s shape): ``Σ_c w_c·t'_c·(-log q_c)`` with
      ``t' = t(1-ε) + ε/C``; a zero target mass contributes exactly 0.

    Any number of spatial axes: ``pred`` of shape ``(N, C, d1, ...)`` with ``axis=1`` and
    targets ``(N, d1, ...)``. Positions whose label is ``ignore_index`` give 0 and leave every
    denominator. ``"mean"`` divides ``Σ sample_weight·loss`` by the number of counted
    positions (``normalizer="valid_count"``), of all positions (``"count"``) or by their summed
    weights ``Σ sample_weight·w_y`` (``"sum_of_weights"``: torch's weighted mean; for
    probability targets the weight of a position is ``Σ_c w_c·t_c``, before smoothing). If no position counts,
    the mean is 0 (``if_all_ignored="zero"``, Keras's choice; the gradient is 0) or NaN
    (``"nan"``, torch's 0/0).

    Equivalents: ``torch.nn.CrossEntropyLoss`` (``axis=1``, ``normalizer="sum_of_weights"``,
    ``if_all_ignored="nan"``), ``keras.losses.SparseCategoricalCrossentropy(from_logits=True,
    ignore_class=)``, ``keras.losses.CategoricalCrossentropy(from_logits=True)``,
    ``gluon.loss.SoftmaxCELoss``, ``optax.losses.softmax_cross_entropy[_with_integer_labels]``.
    """
    return _categorical(
        pred, target, input_kind="logits" if from_logits else "probs", loss_kind="ce", axis=axis,
        class_weight=class_weight, ignore_index=ignore_index, label_smoothing=label_smoothing,
        log_clamp=_check_log_clamp(log_clamp), reduction=reduction, sample_weight=sample_weight,
        normalizer=normalizer, if_all_ignored=if_all_ignored,
    )


def nll(
    log_probs: Any, target: Any, *, axis: int = -1, class_weight: Any = None,
    ignore_index: int | None = None, label_smoothing: float = 0.0, reduction: str = "mean",
    sample_weight: Any = None, normalizer: str | float | Any = "valid_count", if_all_ignored: str = "zero",
) -> Any:
    """Negative log-likelihood of log-probabilities: :func:`cross_entropy` without the softmax.

    Equivalents: ``torch.nn.NLLLoss`` (``axis=1``, ``normalizer="sum_of_weights"``,
    ``if_all_ignored="nan"``), ``gluon.loss.SoftmaxCELoss(from_logits=True)``.
    """
    return _categorical(
        log_probs, target, input_kind="log_probs", loss_kind="ce", axis=axis,
        class_weight=class_weight, ignore_index=ignore_index, label_smoothing=label_smoothing,
        log_clamp=None, reduction=reduction, sample_weight=sample_weight, normalizer=normalizer,
        if_all_ignored=if_all_ignored, names=("log_probs", "target", "sample_weight"),
    )


def poly1_cross_entropy(
    pred: Any, target: Any, *, epsilon: float = 1.0, axis: int = -1, ignore_index: int | None = None,
    label_smoothing: float = 0.0, reduction: str = "mean", sample_weight: Any = None,
    normalizer: str | float | Any = "valid_count", if_all_ignored: str = "zero",
) -> Any:
    """Poly-1 cross-entropy (PolyLoss, Leng et al. 2022): ``CE + ε·(1 - p_t)`` on logits, with
    ``p_t = Σ_c t_c·softmax_c`` the probability given to the (smoothed) target.

    Equivalent: ``optax.losses.poly_loss_cross_entropy`` (default ``epsilon=2.0`` there).
    """
    epsilon = _check_number("epsilon", epsilon, minimum=-1.0)
    return _categorical(
        pred, target, input_kind="logits", loss_kind="poly1", axis=axis, class_weight=None,
        ignore_index=ignore_index, label_smoothing=label_smoothing, log_clamp=None,
        reduction=reduction, sample_weight=sample_weight, normalizer=normalizer,
        if_all_ignored=if_all_ignored, poly_epsilon=epsilon,
    )


FOCAL_KINDS = ("binary", "categorical")


def focal(
    pred: Any, target: Any, *, gamma: float = 2.0, alpha: Any = None, from_logits: bool = True,
    kind: str = "binary", axis: int = -1, label_smoothing: float = 0.0,
    log_clamp: float | None = -100.0, reduction: str = "mean", sample_weight: Any = None,
    normalizer: str | float | Any = "count",
) -> Any:
    """Focal loss (Lin et al. 2017): cross-entropy scaled by ``(1 - p_t)^γ``.

    ``kind="binary"`` (elementwise, sigmoid): ``α_t·(1-p_t)^γ·BCE`` with
    ``p_t = p·y + (1-p)(1-y)`` and ``α_t = α·y + (1-α)(1-y)`` (no α-balancing when ``alpha``
    is ``None``). ``kind="categorical"`` (softmax along ``axis``):
    ``Σ_c α_c·(1-p_c)^γ·t_c·(-log p_c)`` with class-index or probability targets, ``alpha`` a
    scalar, a per-class vector or ``None``. ``from_logits=False`` takes probabilities (logs
    floored at ``log_clamp``).

    Equivalents: ``torchvision.ops.sigmoid_focal_loss`` (``alpha=0.25`` there),
    ``keras.losses.BinaryFocalCrossentropy(apply_class_balancing=)``,
    ``keras.losses.CategoricalFocalCrossentropy`` (clipped probabilities, α on every class),
    ``optax.losses.sigmoid_focal_loss``.
    """
    check_choice("kind", kind, FOCAL_KINDS)
    gamma = _check_number("gamma", gamma, minimum=0.0)
    log_clamp = _check_log_clamp(log_clamp)
    if kind == "binary":
        _check_common(reduction, normalizer)
        if alpha is not None:
            alpha = _check_unit("alpha", alpha)
        return _binary_focal(
            pred, target, gamma=gamma, alpha=alpha, from_logits=from_logits,
            label_smoothing=_check_unit("label_smoothing", label_smoothing), log_clamp=log_clamp,
            reduction=reduction, sample_weight=sample_weight, normalizer=normalizer,
        )
    if isinstance(normalizer, str) and normalizer == "count":
        normalizer = "valid_count"  # the same without ignored positions
    return _categorical(
        pred, target, input_kind="logits" if from_logits else "probs", loss_kind="focal",
        axis=axis, class_weight=None, ignore_index=None, label_smoothing=label_smoothing,
        log_clamp=log_clamp, reduction=reduction, sample_weight=sample_weight,
        normalizer=normalizer, if_all_ignored="nan", gamma=gamma, alpha=alpha,
    )


# ---- divergences and likelihoods ----------------------------------------------------------

PRED_KINDS = ("log_probs", "probs", "logits")


def kl_div(
    pred: Any, target: Any, *, pred_kind: str = "log_probs", log_target: bool = False,
    axis: int = -1, reduction: str = "mean", sample_weight: Any = None,
    normalizer: str | float | Any = "count",
) -> Any:
    """Kullback-Leibler divergence ``KL(p‖q) = Σ_c p_c·(log p_c - log q_c)`` along ``axis``.

    ``pred`` is ``log q`` (``pred_kind="log_probs"``, torch's and optax's convention), ``q``
    itself (``"probs"``) or logits (``"logits"``, log-softmax applied). ``target`` is ``p``, or
    ``log p`` with ``log_target=True``. A zero target probability contributes exactly 0, also
    where ``q = 0`` (torch, MXNet and optax give NaN there). ``"none"`` returns one value per
    distribution (the class axis removed); ``"mean"`` is the mean over distributions (torch's
    ``"batchmean"`` for 2-D inputs); ``"batchmean"`` is the sum over ``pred.shape[0]``.

    Equivalents: ``torch.nn.KLDivLoss(reduction="batchmean")``, ``keras.losses.KLDivergence``
    (which clips both to [1e-7, 1]), ``gluon.loss.KLDivLoss``, ``optax.losses.kl_divergence``.
    """
    check_choice("pred_kind", pred_kind, PRED_KINDS)
    _check_common(reduction, normalizer)
    with backend_of(pred, target, sample_weight, names=_NAMES).scope():
        p = prepare(pred, target, sample_weight, names=_NAMES)
        check_same_shape(p.pred, p.target, _NAMES[:2])
        xp = p.xp
        ndim = len(p.pred.shape)
        if ndim == 0:
            raise ValueError("polyloss: pred must have a class axis, got a 0-d array")
        if pred_kind == "logits":
            log_q = core.log_softmax(p.pred, axis, xp)
        elif pred_kind == "probs":
            check_probabilities(p.backend, p.pred, "pred", hint="; pass pred_kind='logits' for logits")
            # q only matters where p > 0: log a safe value elsewhere (no 0·inf gradient)
            log_q = xp.log(xp.where(p.target != 0, p.pred, 1.0))
        else:
            log_q = p.pred
        if log_target:
            loss = core.kl_pointwise_log_target(log_q, p.target, xp)
        else:
            loss = core.kl_pointwise(log_q, p.target, xp)
        loss = xp.sum(loss, axis=axis)
        return finish(p, _reduce(xp, loss, reduction, p.weight, normalizer, batch=_batch_size(p.pred)))


def poisson_nll(
    pred: Any, target: Any, *, log_input: bool = True, full: bool = False, eps: float = 1e-8,
    reduction: str = "mean", sample_weight: Any = None, normalizer: str | float | Any = "count",
) -> Any:
    """Poisson negative log-likelihood of counts ``y``.

    ``log_input=True``: ``pred`` is the log rate ``z`` and the loss is ``exp(z) - y·z``;
    ``False``: ``pred`` is the rate ``r`` and the loss is ``r - y·log(r + eps)``. ``full=True``
    adds the Stirling approximation of ``log(y!)``, ``y·log y - y + ½·log(2πy)``, where
    ``y > 1`` (0 elsewhere; finite also for ``y = 0``).

    Equivalents: ``torch.nn.PoissonNLLLoss``, ``gluon.loss.PoissonNLLLoss``,
    ``keras.losses.Poisson`` (rate, eps=1e-7), ``tf.nn.log_poisson_loss``.
    """
    _check_common(reduction, normalizer)
    eps = _check_number("eps", eps, minimum=0.0)
    with backend_of(pred, target, sample_weight, names=_NAMES).scope():
        p = prepare(pred, target, sample_weight, names=_NAMES)
        check_same_shape(p.pred, p.target, _NAMES[:2])
        xp = p.xp
        if not log_input:
            check_non_negative(p.backend, p.pred, "pred", "Poisson rates (log_input=False)")
        loss = core.poisson_nll(p.pred, p.target, log_input=log_input, eps=eps, xp=xp)
        if full:
            loss = loss + core.stirling_term(p.target, xp)
        return finish(p, _reduce(xp, loss, reduction, p.weight, normalizer, batch=_batch_size(p.pred)))


def gaussian_nll(
    pred: Any, target: Any, var: Any, *, full: bool = False, eps: float = 1e-6,
    reduction: str = "mean", sample_weight: Any = None, normalizer: str | float | Any = "count",
) -> Any:
    """Gaussian negative log-likelihood ``½·(log v + (pred - target)²/v)`` with
    ``v = max(var, eps)`` (+ ``½·log 2π`` with ``full=True``).

    ``var`` has ``pred``'s shape, or that shape without its last axis (one variance per
    sample), or that shape with one axis of size 1 (shared along it). A negative variance
    is a ``ValueError`` (eager calls).
    Unlike torch, the clamp has a zero gradient below ``eps``.

    Equivalent: ``torch.nn.GaussianNLLLoss`` (whose clamp passes the gradient through).
    """
    _check_common(reduction, normalizer)
    eps = _check_number("eps", eps, minimum=0.0)
    names = _NAMES + ("var",)
    with backend_of(pred, target, sample_weight, var, names=names).scope():
        p = prepare(pred, target, sample_weight, names=_NAMES)
        check_same_shape(p.pred, p.target, _NAMES[:2])
        xp = p.xp
        v = shape_variance(p, var)
        v = xp.where(v < eps, eps, v)
        loss = core.gaussian_nll(p.pred, p.target, v, full=full, xp=xp)
        return finish(p, _reduce(xp, loss, reduction, p.weight, normalizer, batch=_batch_size(p.pred)))


def shape_variance(p: Any, var: Any) -> Any:
    """``var`` in the call's namespace, shaped to broadcast against ``pred`` (torch's rules),
    with a ``ValueError`` for any other shape or a negative entry."""
    xp = p.xp
    v = prepare_extra(p, var, "var")
    ps, vs = tuple(p.pred.shape), tuple(v.shape)
    if vs != ps:
        differing = [i for i, (a, b) in enumerate(zip(vs, ps, strict=False)) if a != b]
        if len(ps) >= 1 and vs == ps[:-1]:
            v = xp.expand_dims(v, axis=-1)
        elif not (len(vs) == len(ps) and len(differing) == 1 and vs[differing[0]] == 1):
            raise ValueError(
                f"polyloss: var has shape {vs}; expected pred's shape {ps}, that shape without "
                f"its last axis {ps[:-1]}, or that shape with one axis of size 1"
            )
    if values_checked(p.backend, v) and bool(xp.any(v < 0)):
        raise ValueError(f"polyloss: var has negative entries (down to {float(xp.min(v))!r}); a "
                         "variance must be >= 0")
    return xp.where(v < 0, math.nan, v)  # unread (jit, lazy, checks off): NaN, never clamped to eps

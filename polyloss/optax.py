"""optax's losses (``optax.losses`` 0.2.8), reproduced exactly, on arrays of any backend.

Same names, arguments and defaults; pure functions returning **unreduced** values, with
``(predictions, targets=None)`` where ``targets=None`` means the predictions are already
the errors. Usable under ``jax.jit``, ``jax.grad`` and ``jax.vmap`` on JAX arrays, and on
every other backend.

Deliberate differences from optax (documented in docs/conventions.md):

- ``predictions`` and ``targets`` must have the same shape (optax's docstrings say
  "broadcastable"; a broadcast is refused here, as everywhere in polyloss).
- A non-positive ``delta`` raises ``ValueError``.
- float16/bfloat16 inputs are computed in float32 and returned in their own dtype.
- ``softmax_cross_entropy_with_integer_labels``: labels outside ``[0, C)`` raise
  ``ValueError`` naming ``labels`` in eager calls; under jit their loss is NaN (optax gives
  NaN, and wraps -1 around to the last class).
- ``kl_divergence``: the gradient w.r.t. ``targets`` where a target is 0 is finite (optax's
  ``where(targets == 0, 0, log(targets))`` sends NaN back there).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

from polyloss._inputs import check_same_shape, finish, prepare, prepare_extra, values_checked
from polyloss._labels import as_index, check_class_labels
from polyloss.backends import backend_of
from polyloss.canonical import sequence
from polyloss.core import classification as cls_core
from polyloss.core import contrastive as contrastive_core
from polyloss.core import margin as margin_core
from polyloss.core import regression as core
from polyloss.core._helpers import arange_like, has_elements, softplus

__all__ = [
    "squared_error", "l2_loss", "huber_loss", "log_cosh",
    "sigmoid_binary_cross_entropy", "sigmoid_focal_loss", "softmax_cross_entropy",
    "softmax_cross_entropy_with_integer_labels", "safe_softmax_cross_entropy",
    "poly_loss_cross_entropy", "kl_divergence", "kl_divergence_with_log_targets",
    "generalized_kl_divergence", "convex_kl_divergence", "smooth_labels",
    "hinge_loss", "perceptron_loss", "multiclass_hinge_loss", "multiclass_perceptron_loss",
    "cosine_similarity", "cosine_distance", "triplet_margin_loss",
    "dice_loss", "binary_dice_loss", "multiclass_generalized_dice_loss",
    "ctc_loss", "ctc_loss_with_forward_probs",
    "sparsemax_loss", "multiclass_sparsemax_loss", "make_fenchel_young_loss", "ranking_softmax_loss",
    "ntxent",
]

_NAMES = ("predictions", "targets", "weights")
_LOG2 = math.log(2.0)


def _elementwise(core_fn: Callable[..., Any], predictions: Any, targets: Any,
                 scale: float | None = None, **params: Any) -> Any:
    backend = backend_of(predictions, targets, names=_NAMES)
    with backend.scope():
        if targets is None:
            # optax: no targets means `predictions` are the errors.
            targets = backend.xp.zeros_like(
                backend.to_xp(predictions) if backend.to_xp else predictions
            )
        p = prepare(predictions, targets, names=_NAMES)
        check_same_shape(p.pred, p.target, _NAMES[:2])
        loss = core_fn(p.pred, p.target, xp=p.xp, **params)
        if scale is not None:
            loss = scale * loss
        return finish(p, loss)


def squared_error(predictions: Any, targets: Any | None = None) -> Any:
    """``optax.losses.squared_error``: ``(predictions - targets)²``, elementwise."""
    return _elementwise(core.squared_error, predictions, targets)


def l2_loss(predictions: Any, targets: Any | None = None) -> Any:
    """``optax.losses.l2_loss``: ``½·(predictions - targets)²``, elementwise (note the ½)."""
    return _elementwise(core.squared_error, predictions, targets, scale=0.5)


def huber_loss(predictions: Any, targets: Any | None = None, *, delta: float = 1.0) -> Any:
    """``optax.losses.huber_loss``: ``½q² + delta·(|e| - q)`` with ``q = min(|e|, delta)``."""
    if not isinstance(delta, (int, float)) or not delta > 0:
        raise ValueError(f"polyloss: delta must be a number > 0, got {delta!r}")
    return _elementwise(core.huber, predictions, targets, delta=float(delta))


def _optax_log_cosh(pred: Any, target: Any, *, xp: Any) -> Any:
    # optax's own form; it cancels for tiny errors, and the mirror reproduces that.
    e = pred - target
    return xp.logaddexp(e, -e) - _LOG2


def log_cosh(predictions: Any, targets: Any | None = None) -> Any:
    """``optax.losses.log_cosh``: ``logaddexp(e, -e) - log 2`` with ``e = predictions - targets``."""
    return _elementwise(_optax_log_cosh, predictions, targets)



# ---- classification -----------------------------------------------------------------------

def _in_scope(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``fn`` inside its first argument's backend scope (MXNet's NumPy shape semantics);
    the full argument checks happen inside."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with backend_of(args[0]).scope():
            return fn(*args, **kwargs)

    return wrapper


def _require_floating(backend: Any, x: Any, name: str) -> None:
    # optax's utils.check_subdtype(x, jnp.floating)
    if not backend.is_floating(x.dtype):
        raise TypeError(f"polyloss: {name} must be a floating-point array, got dtype {x.dtype}")


def _pair(logits: Any, labels: Any, names: tuple, where: Any = None, *, same_shape: bool = True,
          integer_labels: bool = False, labels_take_logits_dtype: bool = False):
    backend = backend_of(logits, labels, where, names=names + ("where",))
    _require_floating(backend, backend.to_xp(logits) if backend.to_xp is not None else logits,
                      names[0])
    p = prepare(logits, labels, names=names + ("weights",), integer_target=integer_labels,
                target_takes_pred_dtype=labels_take_logits_dtype)
    if same_shape:
        check_same_shape(p.pred, p.target, names[:2])
    mask = None
    if where is not None:
        mask = backend.to_xp(where) if backend.to_xp is not None else where
        if mask.dtype != p.xp.bool:
            mask = mask != 0
    return p, mask


def _masked_log_softmax(xp: Any, x: Any, axis: Any, mask: Any) -> Any:
    """``jax.nn.log_softmax(x, axis, where=mask)``: masked-out entries are ``-inf``."""
    if mask is None:
        return cls_core.log_softmax(x, axis, xp)
    x = xp.where(mask, x, -math.inf)
    m = xp.max(x, axis=axis, keepdims=True) if has_elements(x) else xp.sum(x, axis=axis, keepdims=True)
    m = xp.where(xp.isfinite(m), m, 0.0)
    shifted = x - m
    total = xp.sum(xp.where(mask, xp.exp(shifted), 0.0), axis=axis, keepdims=True)
    lse = xp.log(xp.where(total > 0, total, 1.0))  # a row with no class left: no log(0)
    return xp.where(mask, shifted - lse, -math.inf)


def _masked_sum(xp: Any, x: Any, axis: Any, mask: Any) -> Any:
    return xp.sum(x if mask is None else xp.where(mask, x, 0.0), axis=axis)


def _expand_where(xp: Any, mask: Any, ndim: int, axis: Any) -> Any:
    # optax: a `where` of lower rank gets the class axis (or axes) back
    if mask is not None and len(mask.shape) != ndim:
        for a in sorted(a % ndim for a in ((axis,) if isinstance(axis, int) else axis)):
            mask = xp.expand_dims(mask, axis=a)
    return mask


@_in_scope
def sigmoid_binary_cross_entropy(logits: Any, labels: Any) -> Any:
    """``optax.losses.sigmoid_binary_cross_entropy``: ``-y·log σ(z) - (1-y)·log σ(-z)``,
    elementwise (labels may be soft, and take the logits' dtype)."""
    p, _ = _pair(logits, labels, ("logits", "labels"), labels_take_logits_dtype=True)
    xp = p.xp
    with p.backend.scope():
        return finish(p, p.target * softplus(-p.pred, xp) + (1.0 - p.target) * softplus(p.pred, xp))


@_in_scope
def sigmoid_focal_loss(logits: Any, labels: Any, *, alpha: float | None = None,
                       gamma: float = 2.0) -> Any:
    """``optax.losses.sigmoid_focal_loss``: ``(1-p_t)^γ·BCE``, the focal weight computed in log
    space as optax does; times ``α·y + (1-α)(1-y)`` when ``alpha`` is given. Elementwise."""
    p, _ = _pair(logits, labels, ("logits", "labels"), labels_take_logits_dtype=True)
    xp, sg = p.xp, p.backend.stop_gradient
    with p.backend.scope():
        z, y = p.pred, p.target
        ce = y * softplus(-z, xp) + (1.0 - y) * softplus(z, xp)
        log_p, log_q = -softplus(-z, xp), -softplus(z, xp)
        # logsumexp([log p, log q], b=[1-y, y]) as jax.nn.logsumexp: terms with b = 0 are
        # -inf (so they send no gradient back) and the max is stopped
        log_p = xp.where(y != 1.0, log_p, -math.inf)
        log_q = xp.where(y != 0.0, log_q, -math.inf)
        m = xp.where(log_p > log_q, log_p, log_q)
        m = sg(xp.where(xp.isfinite(m), m, 0.0))
        total = (1.0 - y) * xp.exp(log_p - m) + y * xp.exp(log_q - m)
        log_one_minus_p_t = xp.log(xp.abs(total)) + m
        loss = ce * xp.exp(gamma * log_one_minus_p_t)
        if alpha is not None:
            loss = (alpha * y + (1.0 - alpha) * (1.0 - y)) * loss
        return finish(p, loss)


@_in_scope
def softmax_cross_entropy(logits: Any, labels: Any, axis: int | tuple[int, ...] | None = -1,
                          where: Any = None) -> Any:
    """``optax.losses.softmax_cross_entropy``: ``-Σ labels·log_softmax(logits)`` over ``axis``
    (unreduced). A zero label against a ``-inf`` logit gives NaN, as in optax."""
    p, mask = _pair(logits, labels, ("logits", "labels"), where)
    xp = p.xp
    with p.backend.scope():
        mask = _expand_where(xp, mask, len(p.pred.shape), axis)
        logp = _masked_log_softmax(xp, p.pred, axis, mask)
        return finish(p, -_masked_sum(xp, p.target * logp, axis, mask))


@_in_scope
def softmax_cross_entropy_with_integer_labels(
    logits: Any, labels: Any, axis: int | tuple[int, ...] = -1, where: Any = None,
) -> Any:
    """``optax.losses.softmax_cross_entropy_with_integer_labels``: ``logsumexp(z) - z[label]``
    over ``axis`` (an int or a tuple of axes, flattened); ``where`` masks classes, and a row
    with no class left gives 0."""
    backend = backend_of(logits, labels, where, names=("logits", "labels", "where"))
    with backend.scope():
        x = backend.to_xp(labels) if backend.to_xp is not None else labels
        if backend.is_floating(x.dtype):
            raise TypeError(f"polyloss: labels must be an integer array, got dtype {x.dtype}")
        p, mask = _pair(logits, labels, ("logits", "labels"), where, same_shape=False,
                        integer_labels=True)
        xp = p.xp
        z = p.pred
        ndim = len(z.shape)
        if isinstance(axis, (int, tuple)) and not isinstance(axis, bool):
            mask = _expand_where(xp, mask, ndim, axis)
        if isinstance(axis, tuple):
            class_axes = tuple(a % ndim for a in axis)
            batch_axes = tuple(a for a in range(ndim) if a not in class_axes)
            z = xp.permute_dims(z, batch_axes + class_axes)
            z = xp.reshape(z, tuple(z.shape[:len(batch_axes)]) + (-1,))
            if mask is not None:
                # moved as numbers: MXNet cannot transpose booleans
                mask = xp.permute_dims(xp.where(mask, xp.ones_like(p.pred), 0.0), batch_axes + class_axes)
                mask = xp.reshape(mask, tuple(mask.shape[:len(batch_axes)]) + (-1,)) > 0
            axis = len(batch_axes)
        elif isinstance(axis, int) and not isinstance(axis, bool):
            if not -ndim <= axis < ndim:
                raise ValueError(f"axis {axis} is out of bounds for array of dimension {ndim}")
            axis %= ndim
        else:
            raise ValueError("Keyword argument 'axis' must be of type 'int' or 'tuple[int, ...]' but "
                             f"actual type is {type(axis)}.")
        expected = tuple(d for i, d in enumerate(z.shape) if i != axis)
        if tuple(p.target.shape) != expected:
            raise ValueError(f"polyloss: labels has shape {tuple(p.target.shape)}; expected {expected} "
                             "(logits' shape without the class axis)")
        num_classes = z.shape[axis]
        check_class_labels(p.backend, p.target, num_classes, None, "labels")
        safe, _, in_range = cls_core.safe_labels(as_index(p.backend, p.target), num_classes, None, xp)
        label_logits = cls_core.take_class(z, safe, axis, xp)
        if mask is None:
            m = xp.max(z, axis=axis, keepdims=True) if has_elements(z) else xp.zeros_like(
                xp.sum(z, axis=axis, keepdims=True))  # Dask cannot max over nothing
            m = p.backend.stop_gradient(xp.where(xp.isfinite(m), m, 0.0))
            lse = xp.log(xp.sum(xp.exp(z - m), axis=axis)) + xp.squeeze(m, axis=axis)
        else:
            lse = xp.squeeze(_masked_logsumexp(xp, z, axis, mask, p.backend.stop_gradient), axis=axis)
        out = lse - label_logits
        if mask is not None:
            out = xp.where(xp.any(mask, axis=axis), out, 0.0)
        return finish(p, xp.where(in_range, out, math.nan))


def _masked_logsumexp(xp: Any, z: Any, axis: int, mask: Any, sg: Any) -> Any:
    masked = xp.where(mask, z, -math.inf)
    m = xp.max(masked, axis=axis, keepdims=True) if has_elements(z) else xp.sum(
        z, axis=axis, keepdims=True)
    m = sg(xp.where(xp.isfinite(m), m, 0.0))
    total = xp.sum(xp.where(mask, xp.exp(z - m), 0.0), axis=axis, keepdims=True)
    # a row with no class left is -inf in jax (and then replaced by 0): no log(0) warning
    return xp.where(total > 0, xp.log(xp.where(total > 0, total, 1.0)), -math.inf) + m


@_in_scope
def safe_softmax_cross_entropy(logits: Any, labels: Any) -> Any:
    """``optax.losses.safe_softmax_cross_entropy``: ``-Σ labels·log_softmax`` over the last axis,
    where a zero label contributes 0 even against a ``-inf`` logit."""
    p, _ = _pair(logits, labels, ("logits", "labels"))
    xp = p.xp
    with p.backend.scope():
        logp = cls_core.log_softmax(p.pred, -1, xp)
        return finish(p, -xp.sum(xp.where(p.target != 0, p.target * logp, 0.0), axis=-1))


@_in_scope
def poly_loss_cross_entropy(logits: Any, labels: Any, *, epsilon: float = 2.0,
                            axis: int | tuple[int, ...] | None = -1, where: Any = None) -> Any:
    """``optax.losses.poly_loss_cross_entropy``: ``CE + ε·Σ labels·(1 - softmax)`` over ``axis``
    (Leng et al. 2022's Poly-1 for normalised labels)."""
    p, mask = _pair(logits, labels, ("logits", "labels"), where)
    _require_floating(p.backend, labels if p.backend.to_xp is None else p.backend.to_xp(labels),
                      "labels")
    xp = p.xp
    with p.backend.scope():
        mask = _expand_where(xp, mask, len(p.pred.shape), axis)
        logp = _masked_log_softmax(xp, p.pred, axis, mask)
        prob = xp.exp(logp)
        one_minus_pt = _masked_sum(xp, p.target * (1.0 - prob), axis, mask)
        ce = -_masked_sum(xp, p.target * logp, axis, mask)
        return finish(p, ce + epsilon * one_minus_pt)


def _kl_inputs(log_predictions: Any, targets: Any, names: tuple, where: Any):
    backend = backend_of(log_predictions, targets, where, names=names + ("where",))
    with backend.scope():
        t = backend.to_xp(targets) if backend.to_xp is not None else targets
        _require_floating(backend, t, names[1])
        return _pair(log_predictions, targets, names, where)


@_in_scope
def kl_divergence(log_predictions: Any, targets: Any, axis: int | tuple[int, ...] | None = -1,
                  where: Any = None) -> Any:
    """``optax.losses.kl_divergence``: ``Σ t·(log t - log_predictions)`` over ``axis`` with
    ``0·log 0 = 0`` (unreduced)."""
    p, mask = _kl_inputs(log_predictions, targets, ("log_predictions", "targets"), where)
    return finish(p, _kl_sum(p, axis, mask))


def _kl_sum(p: Any, axis: Any, mask: Any) -> Any:
    """``Σ t·(where(t == 0, 0, log t) - lp)``, the log taken of a safe value where t = 0."""
    xp, t = p.xp, p.target
    zero = t == 0
    log_t = xp.where(zero, 0.0, xp.log(xp.where(zero, 1.0, t)))
    return _masked_sum(xp, t * (log_t - p.pred), axis, mask)


@_in_scope
def kl_divergence_with_log_targets(log_predictions: Any, log_targets: Any,
                                   axis: int | tuple[int, ...] | None = -1,
                                   where: Any = None) -> Any:
    """``optax.losses.kl_divergence_with_log_targets``: ``Σ exp(lt)·(lt - lp)`` over ``axis``."""
    p, mask = _kl_inputs(log_predictions, log_targets, ("log_predictions", "log_targets"), where)
    xp = p.xp
    with p.backend.scope():
        return finish(p, _masked_sum(xp, xp.exp(p.target) * (p.target - p.pred), axis, mask))


@_in_scope
def generalized_kl_divergence(log_predictions: Any, targets: Any,
                              axis: int | tuple[int, ...] | None = -1, where: Any = None) -> Any:
    """``optax.losses.generalized_kl_divergence``: ``kl_divergence + Σ (exp(lp) - t)``, for
    unnormalised measures."""
    p, mask = _kl_inputs(log_predictions, targets, ("log_predictions", "targets"), where)
    extra = _masked_sum(p.xp, p.xp.exp(p.pred) - p.target, axis, mask)
    return finish(p, _kl_sum(p, axis, mask) + extra)


convex_kl_divergence = generalized_kl_divergence


@_in_scope
def smooth_labels(labels: Any, alpha: float, *, axis: int | tuple[int, ...] | None = -1,
                  where: Any = None) -> Any:
    """``optax.smooth_labels``: ``(1 - α)·labels + α/K`` with ``K`` the number of classes along
    ``axis`` (or of unmasked classes with ``where``)."""
    backend = backend_of(labels, where, names=("labels", "where"))
    with backend.scope():
        p, mask = _pair(labels, labels, ("labels", "labels"), where)
        xp = p.xp
        if mask is None:
            axes = (axis,) if isinstance(axis, int) else tuple(axis) if axis is not None else tuple(
                range(len(p.pred.shape)))
            count = math.prod(p.pred.shape[a] for a in axes)
        else:
            count = xp.sum(xp.where(mask, xp.ones_like(p.pred), 0.0), axis=axis, keepdims=True)
        return finish(p, (1.0 - alpha) * p.pred + alpha / count)



# ---- margin losses ------------------------------------------------------------------------
# jnp.maximum splits a tie's gradient ½/½, so optax's hinge has gradient -½·y at the margin.

@_in_scope
def hinge_loss(predictor_outputs: Any, targets: Any) -> Any:
    """``optax.losses.hinge_loss``: ``max(0, 1 - ŷ·y)`` for ±1 targets, elementwise."""
    p, _ = _pair(predictor_outputs, targets, ("predictor_outputs", "targets"))
    return finish(p, margin_core.hinge(p.pred, p.target, 1.0, p.xp, tie="split"))


@_in_scope
def perceptron_loss(predictor_outputs: Any, targets: Any) -> Any:
    """``optax.losses.perceptron_loss``: ``max(0, -ŷ·y)`` for ±1 targets, elementwise."""
    p, _ = _pair(predictor_outputs, targets, ("predictor_outputs", "targets"))
    return finish(p, margin_core.hinge(p.pred, p.target, 0.0, p.xp, tie="split"))


def _multiclass_terms(scores: Any, labels: Any) -> tuple:
    p, _ = _pair(scores, labels, ("scores", "labels"), same_shape=False, integer_labels=True)
    xp = p.xp
    ndim = len(p.pred.shape)
    expected = tuple(p.pred.shape[:-1])
    if tuple(p.target.shape) != expected:
        raise ValueError(f"polyloss: labels has shape {tuple(p.target.shape)}; expected {expected}")
    num_classes = p.pred.shape[-1]
    check_class_labels(p.backend, p.target, num_classes, None, "labels")
    safe, _, in_range = cls_core.safe_labels(as_index(p.backend, p.target), num_classes, None, xp)
    classes = cls_core.expand_class_axis(arange_like(num_classes, safe, safe.dtype, xp), -1, ndim, xp)
    one_hot = xp.where(xp.expand_dims(safe, axis=-1) == classes, xp.ones_like(p.pred), 0.0)
    true_score = xp.sum(p.pred * one_hot, axis=-1)
    return p, xp, one_hot, true_score, in_range


@_in_scope
def multiclass_hinge_loss(scores: Any, labels: Any) -> Any:
    """``optax.losses.multiclass_hinge_loss``: ``max_k(s_k + 1 - [k = y]) - s_y`` (Crammer–Singer)
    with integer labels, over the last axis. The result keeps the scores' dtype (optax's
    ``jax.nn.one_hot`` makes float32 scores float64 when ``jax_enable_x64`` is on)."""
    p, xp, one_hot, true_score, in_range = _multiclass_terms(scores, labels)
    out = margin_core.max_even_ties(p.pred + 1.0 - one_hot, -1, xp, p.backend.stop_gradient) - true_score
    return finish(p, xp.where(in_range, out, math.nan))


@_in_scope
def multiclass_perceptron_loss(scores: Any, labels: Any) -> Any:
    """``optax.losses.multiclass_perceptron_loss``: ``max_k s_k - s_y`` with integer labels."""
    p, xp, one_hot, true_score, in_range = _multiclass_terms(scores, labels)
    out = margin_core.max_even_ties(p.pred, -1, xp, p.backend.stop_gradient) - true_score
    return finish(p, xp.where(in_range, out, math.nan))



# ---- embedding losses ---------------------------------------------------------------------

def _optax_cosine(predictions: Any, targets: Any, epsilon: float, axis: Any, where: Any) -> tuple:
    p, mask = _pair(predictions, targets, ("predictions", "targets"), where)
    backend = p.backend
    _require_floating(backend, backend.to_xp(targets) if backend.to_xp is not None else targets,
                      "targets")
    xp = p.xp

    def unit(v: Any) -> Any:
        norm2 = _masked_sum_keepdims(xp, v * v, axis, mask)
        return v / xp.sqrt(xp.where(norm2 < epsilon, epsilon, norm2))

    return p, _masked_sum(xp, unit(p.pred) * unit(p.target), axis, mask)


def _masked_sum_keepdims(xp: Any, x: Any, axis: Any, mask: Any) -> Any:
    return xp.sum(x if mask is None else xp.where(mask, x, 0.0), axis=axis, keepdims=True)


@_in_scope
def cosine_similarity(predictions: Any, targets: Any, *, epsilon: float = 0.0,
                      axis: int | tuple[int, ...] | None = -1, where: Any = None) -> Any:
    """``optax.losses.cosine_similarity``: ``Σ a/√max(Σa², ε) · b/√max(Σb², ε)`` over ``axis`` (a
    similarity; ``epsilon=0`` gives NaN for a zero vector, as optax)."""
    p, out = _optax_cosine(predictions, targets, epsilon, axis, where)
    return finish(p, out)


@_in_scope
def cosine_distance(predictions: Any, targets: Any, *, epsilon: float = 0.0,
                    axis: int | tuple[int, ...] | None = -1, where: Any = None) -> Any:
    """``optax.losses.cosine_distance``: ``1 - cosine_similarity``."""
    p, out = _optax_cosine(predictions, targets, epsilon, axis, where)
    return finish(p, 1.0 - out)


@_in_scope
def triplet_margin_loss(anchors: Any, positives: Any, negatives: Any, axis: int = -1,
                        norm_degree: float = 2, margin: float = 1.0, eps: float = 1e-6) -> Any:
    """``optax.losses.triplet_margin_loss``: ``max(0, d(a, p) - d(a, n) + margin)`` with
    ``d = (Σ(a - b)^k + eps)^(1/k)``, ``k = norm_degree`` (no absolute value: an odd ``k``
    gives signed distances, as optax)."""
    p, _ = _pair(anchors, positives, ("anchors", "positives"))
    xp = p.xp
    neg = prepare_extra(p, negatives, "negatives")
    check_same_shape(p.pred, neg, ("anchors", "negatives"))

    def distance(b: Any) -> Any:
        d = p.pred - b
        powered = d * d if norm_degree == 2 else d ** norm_degree
        return (xp.sum(powered, axis=axis) + eps) ** (1.0 / norm_degree)

    loss = margin_core.hinge_part(distance(p.target) - distance(neg) + margin, xp, tie="split")
    return finish(p, loss)



# ---- segmentation ---------------------------------------------------------------------------

_DICE_REDUCTIONS = ("mean", "sum", "none")


def _dice_loss(p: Any, preds: Any, targets: Any, class_weights: Any, smooth: float, alpha: float,
               beta: float, apply_softmax: bool, reduction: str, ignore_background: bool,
               axis: Any) -> Any:
    xp = p.xp
    if len(preds.shape) == len(targets.shape) - 1:
        preds = xp.expand_dims(preds, axis=-1)
    if len(targets.shape) == len(preds.shape) - 1:
        targets = xp.expand_dims(targets, axis=-1)
    check_same_shape(preds, targets, ("predictions", "targets"))
    if not apply_softmax and values_checked(p.backend, preds):
        sums = xp.sum(preds, axis=-1)
        # written as "not close" so that NaN sums fail too, as with optax's allclose
        if bool(xp.any(xp.logical_not(xp.abs(sums - 1.0) <= 1e-5 * 1.0 + 1e-8))):
            raise ValueError(
                "When apply_softmax=False, predictions must be valid probability distributions that "
                f"sum to 1 along the class axis. Found sum range: [{float(xp.min(sums)):.6f}, "
                f"{float(xp.max(sums)):.6f}]")
    probs = preds
    if apply_softmax:
        probs = cls_core.sigmoid(preds, xp) if preds.shape[-1] == 1 else cls_core.softmax(preds, -1, xp)
    ndim = len(probs.shape)
    axes = tuple(range(1, ndim - 1)) if axis is None else axis
    intersection = xp.sum(probs * targets, axis=axes)
    pred_sum = xp.sum(probs, axis=axes)
    target_sum = xp.sum(targets, axis=axes)
    coeff = (intersection + smooth) / (
        intersection + alpha * (pred_sum - intersection) + beta * (target_sum - intersection) + smooth)
    loss = 1.0 - coeff
    if class_weights is not None:
        if loss.dtype != class_weights.dtype:
            loss = xp.astype(loss, class_weights.dtype)
        loss = loss * class_weights
    if ignore_background and probs.shape[-1] > 1:
        loss = loss[..., 1:]
    if reduction == "mean":
        return xp.mean(loss, axis=-1)
    if reduction == "sum":
        return xp.sum(loss, axis=-1)
    if reduction == "none":
        return loss
    raise ValueError(f"Unsupported reduction: {reduction}")


@_in_scope
def dice_loss(predictions: Any, targets: Any, *, class_weights: Any = None, smooth: float = 1.0,
              alpha: float = 0.5, beta: float = 0.5, apply_softmax: bool = True, reduction: str = "mean",
              ignore_background: bool = False, axis: Any = None) -> Any:
    """``optax.losses.dice_loss``: per sample and class (classes on the last axis, spatial axes
    1..-2 summed), ``1 - (I + s)/(I + α·(ΣP - I) + β·(ΣT - I) + s)`` on softmax (sigmoid for one
    class) probabilities, times ``class_weights``, then ``reduction`` over the classes."""
    backend_of(predictions, targets, class_weights, names=("predictions", "targets", "class_weights"))
    p, _ = _pair(predictions, targets, ("predictions", "targets"), same_shape=False)
    cw = None
    if class_weights is not None:
        raw = p.backend.to_xp(class_weights) if p.backend.to_xp is not None else class_weights
        dtype = p.pred.dtype
        if hasattr(raw, "dtype") and p.backend.is_floating(raw.dtype):
            dtype = p.xp.result_type(p.pred.dtype, raw.dtype)  # optax promotes with the weights
            p = p._replace(out_dtype=p.xp.result_type(p.out_dtype, raw.dtype))
        cw = prepare_extra(p, class_weights, "class_weights", dtype=dtype)
        if len(cw.shape) != 1:
            raise ValueError(f"polyloss: class_weights must be a vector, got shape {tuple(cw.shape)}")
    loss = _dice_loss(p, p.pred, p.target, cw, smooth, alpha, beta, apply_softmax, reduction,
                      ignore_background, axis)
    return finish(p, loss)


@_in_scope
def binary_dice_loss(predictions: Any, targets: Any, *, smooth: float = 1.0,
                     apply_sigmoid: bool = True) -> Any:
    """``optax.losses.binary_dice_loss``: :func:`dice_loss` of a single foreground channel."""
    p, _ = _pair(predictions, targets, ("predictions", "targets"), same_shape=False)
    preds, targs = p.pred, p.target
    if len(preds.shape) == len(targs.shape) and preds.shape[-1] != 1:
        preds, targs = p.xp.expand_dims(preds, axis=-1), p.xp.expand_dims(targs, axis=-1)
    return finish(p, _dice_loss(p, preds, targs, None, smooth, 0.5, 0.5, apply_sigmoid, "mean", False,
                                None))


@_in_scope
def multiclass_generalized_dice_loss(predictions: Any, targets: Any, *, smooth: float = 1.0,
                                     apply_softmax: bool = True, ignore_background: bool = False) -> Any:
    """``optax.losses.multiclass_generalized_dice_loss``: Dice with class weights
    ``1/(f² + 1e-7)`` from the target class frequencies ``f``, normalised to sum to C; a scalar."""
    p, _ = _pair(predictions, targets, ("predictions", "targets"))
    xp = p.xp
    ndim = len(p.target.shape)
    freq = xp.sum(p.target, axis=tuple(range(ndim - 1)))
    weights = 1.0 / (freq * freq + 1e-7)
    weights = weights / xp.sum(weights) * weights.shape[0]
    loss = _dice_loss(p, p.pred, p.target, weights, smooth, 0.5, 0.5, apply_softmax, "none",
                      ignore_background, None)
    return finish(p, xp.mean(loss))



# ---- sequence: CTC ---------------------------------------------------------------------------

_CTC_NAMES = {"labels": "labels", "label_lengths": "label_paddings", "input_lengths": "logit_paddings"}


def _ctc_padding_mask(backend: Any, paddings: Any, name: str, dtype: Any) -> Any:
    """0/1 padding indicators (1 = padded) as a bool "used" mask; optax's paddings must be
    exactly 0 or 1 (other values would blend frames in log space)."""
    xp = backend.xp
    if backend.to_xp is not None:
        paddings = backend.to_xp(paddings)
    if values_checked(backend, paddings):
        if bool(xp.any((paddings != 0) & (paddings != 1))):
            raise ValueError(f"polyloss: {name} must hold 0 (kept) or 1 (padded) only")
    return paddings == 0


def _ctc_forward(logits: Any, logit_paddings: Any, labels: Any, label_paddings: Any, blank_id: int,
                 log_epsilon: float, keep_all: bool) -> tuple:
    names = ("logits", "labels", "logit_paddings", "label_paddings")
    backend = backend_of(logits, labels, logit_paddings, label_paddings, names=names)
    _require_floating(backend, backend.to_xp(logits) if backend.to_xp is not None else logits, "logits")
    p = prepare(logits, labels, names=names[:2] + ("weights",), integer_target=True)
    xp = p.xp
    if len(p.pred.shape) != 3:
        raise ValueError(f"polyloss: logits must have rank 3 (B, T, K), got shape {tuple(p.pred.shape)}")
    if len(p.target.shape) != 2:
        raise ValueError(f"polyloss: labels must have rank 2 (B, N), got shape {tuple(p.target.shape)}")
    batch, t_max, num_classes = p.pred.shape
    if p.target.shape[0] != batch:
        raise ValueError(f"Expected `labels` to have batch size {batch}, got {p.target.shape[0]}.")
    if tuple(label_paddings.shape) != tuple(p.target.shape):
        raise ValueError(f"polyloss: label_paddings must have labels' shape {tuple(p.target.shape)}, "
                         f"got {tuple(label_paddings.shape)}")
    if tuple(logit_paddings.shape) != (batch, t_max):
        raise ValueError(f"polyloss: logit_paddings must have shape {(batch, t_max)}, got "
                         f"{tuple(logit_paddings.shape)}")
    if not isinstance(blank_id, int) or not 0 <= blank_id < num_classes:
        raise ValueError(f"polyloss: blank_id must be a class index in [0, {num_classes}), got {blank_id!r}")
    y = sequence.labels_array(backend, p.target, "labels", p.pred)
    frames = _ctc_padding_mask(backend, logit_paddings, "logit_paddings", p.pred.dtype)
    label_kept = _ctc_padding_mask(backend, label_paddings, "label_paddings", p.pred.dtype)
    if values_checked(backend, label_kept) and y.shape[1] > 1:
        if bool(xp.any(~label_kept[:, :-1] & label_kept[:, 1:])):
            raise ValueError("polyloss: label_paddings must be right-padded (zeros, then ones) in "
                             "every row, as optax requires")
    index = y.dtype
    label_lengths = xp.sum(xp.astype(label_kept, index), axis=1)
    input_lengths = xp.sum(xp.astype(frames, index), axis=1)
    log_probs = cls_core.log_softmax(p.pred, -1, xp)
    nll, _, history = sequence.sequence_nll(
        backend, log_probs, y, label_lengths, input_lengths, frames, blank=blank_id,
        log_zero=float(log_epsilon), names=_CTC_NAMES, keep_all=keep_all)
    return p, nll, history


def ctc_loss(logits: Any, logit_paddings: Any, labels: Any, label_paddings: Any, *, blank_id: int = 0,
             log_epsilon: float = -1e5) -> Any:
    """``optax.losses.ctc_loss``: per-sequence CTC ``-log p(labels | logits)`` ``(B,)``.

    ``logits`` ``(B, T, K)`` (log_softmax is applied), ``logit_paddings`` ``(B, T)`` and
    ``label_paddings`` ``(B, N)`` hold 1 where padded (labels right-padded); the blank is
    ``blank_id``. ``log_epsilon`` stands for log 0, so a label sequence that cannot fit
    its frames costs about ``-log_epsilon`` per missing frame rather than ``inf``.
    Equivalents: ``torch.nn.functional.ctc_loss(log_softmax(logits).transpose(0, 1), ...,
    reduction='none')``, ``tf.nn.ctc_loss(logits_time_major=False)``.
    """
    with backend_of(logits).scope():
        p, nll, _ = _ctc_forward(logits, logit_paddings, labels, label_paddings, blank_id,
                                 log_epsilon, keep_all=False)
        return finish(p, nll)


def ctc_loss_with_forward_probs(logits: Any, logit_paddings: Any, labels: Any, label_paddings: Any, *,
                                blank_id: int = 0, log_epsilon: float = -1e5) -> tuple[Any, Any, Any]:
    """``optax.losses.ctc_loss_with_forward_probs``: ``(loss, logalpha_blank, logalpha_nonblank)``.

    ``loss`` as ``ctc_loss``; ``logalpha_blank`` ``(T, B, N + 1)`` are the log forward
    variables of the blank before each label (and after the last), ``logalpha_nonblank``
    ``(T, B, N)`` those of each label, after each frame (carried over padded frames). As in
    optax, the last frame's blank row also holds the paths that end on the label before it.
    """
    with backend_of(logits).scope():
        p, nll, history = _ctc_forward(logits, logit_paddings, labels, label_paddings, blank_id,
                                       log_epsilon, keep_all=True)
        xp = p.xp
        if history is None or history.shape[0] == 0:
            raise ValueError("polyloss: logits must have at least one frame (T >= 1)")
        blank_alpha, label_alpha = history[:, :, 0::2], history[:, :, 1::2]
        last_blank, last_label = blank_alpha[-1, :, :], label_alpha[-1, :, :]
        merged = xp.concat([last_blank[:, :1], xp.logaddexp(last_blank[:, 1:], last_label)], axis=1)
        blank_alpha = xp.concat([blank_alpha[:-1, :, :], merged[None, :, :]], axis=0)
        return finish(p, nll), finish(p, blank_alpha), finish(p, label_alpha)


# ---- sparsemax, Fenchel–Young, ranking and contrastive ----
# Deliberate differences from optax (docs/conventions.md):
# - multiclass_sparsemax_loss takes scores of shape (..., C) with labels (...) and projects
#   each row; optax vmaps over the first axis only (2-D scores; 1-D or 3-D fail there). For
#   float32 scores it computes and returns float32 (optax under jax_enable_x64 computes the
#   projection's 1/k in float64 and returns float64).
# - make_fenchel_young_loss: targets must have the scores' shape (optax broadcasts leading
#   axes); max_fun is applied to each vector of the last axis (jax.vmap on JAX arrays, a loop
#   over the rows elsewhere).
# - ranking_softmax_loss: where/weights/labels must have the logits' shape; weights take the
#   logits' dtype (optax promotes); the gradient w.r.t. weights at masked items is 0 (optax:
#   NaN, from 0·log 0 in its backward); jnp.mean/jnp.sum as reduce_fn run as Array API code.
# - ntxent: embeddings must be 2-D and labels 1-D of the same length (optax checks only the
#   leading dimension); no NumPy warnings for the log(0) of pairs that do not count.

def _float_eps(xp: Any, dtype: Any) -> float:
    """``finfo(dtype).eps`` for the floating dtypes polyloss computes in."""
    known = (("float64", 2.0 ** -52), ("float32", 2.0 ** -23), ("float16", 2.0 ** -10),
             ("bfloat16", 2.0 ** -7))
    for name, eps in known:
        if getattr(xp, name, None) is not None and dtype == getattr(xp, name):
            return eps
    # namespaces that do not name every dtype they carry (Dask's has no float16): by name
    dtype_name = str(getattr(dtype, "name", dtype)).rsplit(".", 1)[-1]
    for name, eps in known:
        if dtype_name == name:
            return eps
    raise TypeError(f"polyloss: no machine epsilon known for dtype {dtype}")


def _sparse_plus(x: Any, xp: Any) -> Any:
    """``jax.nn.sparse_plus``: 0 for ``x <= -1``, ``x`` for ``x >= 1``, ``(x + 1)²/4`` between."""
    y = x + 1.0
    return xp.where(x <= -1.0, 0.0, xp.where(x >= 1.0, x, y * y / 4.0))


def _project_simplex(v: Any, xp: Any, sg: Callable[[Any], Any]) -> Any:
    """Euclidean projection of each vector of the last axis onto the probability simplex.

    The value is optax's sort-based ``_projection_unit_simplex``: with ``u`` the entries sorted
    in decreasing order, ``k = #{j : 1/j + u_j - (u_1 + … + u_j)/j > 0}`` and
    ``p = max(0, 1/k + v - (u_1 + … + u_k)/k)``. The gradient is optax's custom JVP,
    ``J = diag(s) - s·sᵀ/|s|`` with ``s = [p > 0]``, written as
    ``p + s·δ - s·(Σ s·δ)/|s|`` with ``δ = v - stop_gradient(v)`` (zero-valued), so no backend
    has to differentiate through ``sort``.
    """
    vs = sg(v)
    u = -xp.sort(-vs, axis=-1)  # decreasing
    cs = xp.cumulative_sum(u, axis=-1)
    ind = xp.cumulative_sum(xp.ones_like(u), axis=-1)  # 1, 2, …, n (exact)
    cond = 1.0 / ind + (u - cs / ind) > 0
    k = xp.sum(xp.where(cond, xp.ones_like(u), 0.0), axis=-1, keepdims=True)
    # (u_1 + … + u_k) = cs[k - 1], read by comparison (a sum with a single non-zero term)
    top = xp.sum(xp.where(ind == k, cs, 0.0), axis=-1, keepdims=True)
    t = 1.0 / k + (vs - top / k)
    proba = xp.where(t > 0, t, 0.0)
    supp = proba > 0
    card = xp.sum(xp.where(supp, xp.ones_like(proba), 0.0), axis=-1, keepdims=True)
    card = xp.where(card > 0, card, 1.0)
    delta = xp.where(supp, v - vs, 0.0)
    return proba + delta - xp.where(supp, xp.sum(delta, axis=-1, keepdims=True) / card, 0.0)


@_in_scope
def sparsemax_loss(logits: Any, labels: Any) -> Any:
    """``optax.losses.sparsemax_loss``: the binary sparsemax (Fenchel–Young) loss
    ``sparse_plus(-z if y else z)``, elementwise, where ``sparse_plus(x)`` is 0 for
    ``x <= -1``, ``(x + 1)²/4`` for ``-1 < x < 1`` and ``x`` for ``x >= 1``; zero exactly when
    ``sparse_sigmoid(z) == y``. ``labels`` are 0/1 (any non-zero label counts as 1, as optax's
    ``where(labels, …)``), of the logits' shape; the result has the logits' dtype."""
    p, _ = _pair(logits, labels, ("logits", "labels"), labels_take_logits_dtype=True)
    xp = p.xp
    z = xp.where(p.target != 0, -p.pred, p.pred)
    return finish(p, _sparse_plus(z, xp))


@_in_scope
def multiclass_sparsemax_loss(scores: Any, labels: Any) -> Any:
    """``optax.losses.multiclass_sparsemax_loss``: the sparsemax Fenchel–Young loss per row,
    ``Σ_k p_k·(s_k - s_y)[p_k ≠ 0] + ½·(1 - Σ_k p_k²)`` with ``p = sparsemax(s)`` (the
    Euclidean projection of the row onto the simplex) and integer ``labels`` ``y`` (Martins &
    Astudillo 2016). Its gradient is ``p - onehot(y)``, computed as optax does (through the
    projection's JVP). Scores ``(..., C)``, labels ``(...)``; labels outside ``[0, C)`` raise
    ``ValueError`` in eager calls and give NaN under jit."""
    p, xp, one_hot, true_score, in_range = _multiclass_terms(scores, labels)
    proba = _project_simplex(p.pred, xp, p.backend.stop_gradient)
    shifted = xp.where(one_hot != 0, 0.0, p.pred - xp.expand_dims(true_score, axis=-1))
    out = xp.sum(proba * xp.where(proba != 0, shifted, 0.0), axis=-1) + 0.5 * (
        1.0 - xp.sum(proba * proba, axis=-1))
    return finish(p, xp.where(in_range, out, math.nan))


def _map_last_axis(backend: Any, fn: Callable[..., Any], s: Any, args: tuple, kwargs: dict) -> Any:
    """``fn`` on each vector of ``s``'s last axis (``jnp.vectorize(fn, signature="(n)->()")``)."""
    xp = backend.xp
    batch, n = tuple(s.shape[:-1]), s.shape[-1]
    rows = xp.reshape(s, (-1, n))
    count = rows.shape[0]
    if backend.framework == "jax":
        import jax

        out = jax.vmap(lambda r: fn(r, *args, **kwargs))(rows)
    elif count == 0:
        out = xp.zeros((0,), dtype=s.dtype, device=backend.device(s))
    else:
        values = []
        for i in range(count):
            v = fn(rows[i, ...], *args, **kwargs)
            if backend.to_xp is not None:
                v = backend.to_xp(v)
            values.append(xp.reshape(v, ()))
        out = xp.stack(values, axis=0)
    return xp.reshape(out, batch)


def make_fenchel_young_loss(max_fun: Callable[..., Any]) -> Callable[..., Any]:
    """``optax.losses.make_fenchel_young_loss``: the Fenchel–Young loss
    ``fy(scores, targets, *args, **kwargs) = max_fun(scores) - <targets, scores>`` over the
    last axis (Blondel, Martins & Niculae 2020), built from a regularised max.

    ``max_fun(vector, *args, **kwargs)`` is called, as in optax, on each vector of the last
    axis (a 1-D array of the scores' backend: a torch tensor, a ``tf.Tensor``, a JAX array
    (mapped with ``jax.vmap``, as optax's ``jnp.vectorize`` does), an ``mx.np`` array for
    MXNet) and must return a scalar; it must therefore work on that backend's arrays (e.g.
    ``lambda v: torch.logsumexp(v, -1)``; ``jax.scipy.special.logsumexp`` on JAX arrays). Its
    gradient is the backend's autograd of ``max_fun``. ``targets`` must have the scores' shape.
    """
    if not callable(max_fun):
        raise TypeError(f"polyloss: max_fun must be callable, got {type(max_fun).__name__}")

    def fenchel_young_loss(scores: Any, targets: Any, *args: Any, **kwargs: Any) -> Any:
        names = ("scores", "targets", "weights")
        with backend_of(scores, targets, names=names[:2]).scope():
            p = prepare(scores, targets, names=names)
            check_same_shape(p.pred, p.target, names[:2])
            if len(p.pred.shape) == 0:
                raise ValueError("polyloss: scores must have at least one dimension (the vectors "
                                 "lie along the last axis)")
            xp = p.xp
            max_value = _map_last_axis(p.backend, max_fun, p.pred, args, kwargs)
            if max_value.dtype != p.pred.dtype:
                max_value = xp.astype(max_value, p.pred.dtype)
            return finish(p, max_value - xp.sum(p.target * p.pred, axis=-1))

    fenchel_young_loss.__doc__ = f"Fenchel–Young loss built from {getattr(max_fun, '__name__', max_fun)!s}."
    return fenchel_young_loss


def _log_softmax_stopped(xp: Any, z: Any, sg: Callable[[Any], Any]) -> Any:
    """``jax.nn.log_softmax(z, axis=-1)``: ``z - stop_gradient(max) - log Σ exp(…)``; a row
    that is all ``-inf`` gives ``-inf`` here (NaN in jax; the callers mask those rows out)."""
    if not has_elements(z):
        return z - xp.log(xp.sum(xp.exp(z), axis=-1, keepdims=True))
    m = xp.max(z, axis=-1, keepdims=True)
    shifted = z - sg(xp.where(xp.isfinite(m), m, 0.0))
    total = xp.sum(xp.exp(shifted), axis=-1, keepdims=True)
    return shifted - xp.log(xp.where(total > 0, total, 1.0))


def _mean(a: Any, *, where: Any = None) -> Any:
    """``jnp.mean(a, where=where)`` on any backend: ``Σ where·a / Σ where`` (NaN when nothing
    counts). ``ranking_softmax_loss``'s default ``reduce_fn``."""
    backend = backend_of(a, names=("a",))
    xp = backend.xp
    if where is None:
        total, count = xp.sum(a), xp.sum(xp.ones_like(a))
    else:
        total = xp.sum(xp.where(where, a, 0.0))
        count = xp.sum(xp.where(where, xp.ones_like(a), 0.0))
    return xp.where(count > 0, total / xp.where(count > 0, count, 1.0), math.nan)


_mean.__name__ = "mean"


def _sum(a: Any, *, where: Any = None) -> Any:
    """``jnp.sum(a, where=where)`` on any backend."""
    xp = backend_of(a, names=("a",)).xp
    return xp.sum(a if where is None else xp.where(where, a, 0.0))


def _resolve_reduce_fn(reduce_fn: Any) -> Any:
    import sys

    jnp = sys.modules.get("jax.numpy")
    if jnp is not None:
        if reduce_fn is jnp.mean:
            return _mean
        if reduce_fn is jnp.sum:
            return _sum
    return reduce_fn


def _accepts_where(fn: Any) -> bool:
    import inspect

    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return True  # unknown: call it as optax does
    return any(q.name == "where" or q.kind is inspect.Parameter.VAR_KEYWORD for q in params)


@_in_scope
def ranking_softmax_loss(logits: Any, labels: Any, *, where: Any = None, weights: Any = None,
                         reduce_fn: Callable[..., Any] | None = _mean) -> Any:
    """``optax.losses.ranking_softmax_loss``: the listwise softmax loss
    ``ℓ(s, y) = -Σ_i y_i·log softmax(s)_i`` over the last axis (the list), for lists
    ``[..., list_size]``.

    ``where`` masks items (masked items leave both the softmax and the sum; a list with no
    valid item is 0 and is left out of the mean); ``weights`` multiply the labels.
    ``reduce_fn`` is called as ``reduce_fn(loss, where=lists_with_a_valid_item)`` as in optax;
    the default reproduces ``jnp.mean`` on any backend (a mean that is NaN only because no list
    counts is 0), ``jnp.mean``/``jnp.sum`` themselves run as Array API code on any backend, a
    ``reduce_fn`` without a ``where`` keyword is called as ``reduce_fn(loss)`` when ``where``
    is None, and ``None`` returns the per-list values (0 for lists with no valid item).
    """
    p, mask = _pair(logits, labels, ("logits", "labels"), where, labels_take_logits_dtype=True)
    xp, sg = p.xp, p.backend.stop_gradient
    y, z = p.target, p.pred
    if mask is not None:
        check_same_shape(p.pred, mask, ("logits", "where"))
        y = xp.where(mask, y, 0.0)
        z = xp.where(mask, z, -math.inf)
    if weights is not None:
        w = prepare_extra(p, weights, "weights")
        check_same_shape(p.pred, w, ("logits", "weights"))
        y = y * w
    logp = _log_softmax_stopped(xp, z, sg)
    if mask is not None:
        logp = xp.where(mask, logp, 0.0)  # masked items: no -inf, so no 0·inf in the backward
    loss = -xp.sum(y * logp, axis=-1)
    lists = None if mask is None else xp.any(mask, axis=-1)
    fn = _resolve_reduce_fn(reduce_fn)
    if fn is None:
        out = loss if lists is None else xp.where(lists, loss, 0.0)
        return finish(p, out)
    if lists is None and not _accepts_where(fn):
        out = fn(loss)
    else:
        out = fn(loss, where=lists)
    if p.backend.to_xp is not None and type(out).__module__.partition(".")[0] == "mxnet":
        out = p.backend.to_xp(out)
    if fn is _mean:
        # optax: a NaN mean from an empty selection is 0 unless the losses themselves had NaN
        valid = xp.logical_not(xp.any(xp.isnan(loss)))
        out = xp.where(xp.logical_and(xp.isnan(out), valid), 0.0, out)
    return finish(p, out)


@_in_scope
def ntxent(embeddings: Any, labels: Any, temperature: float = 0.07) -> Any:
    """``optax.losses.ntxent``: normalised temperature-scaled cross entropy (NT-Xent, Chen et
    al. 2020) over a batch of embeddings ``[batch, features]`` with group ``labels`` ``[batch]``.

    With ``s_ij = cos(e_i, e_j)/temperature`` (norms ``√max(Σe², finfo.eps)``), positives
    ``P(i) = {j ≠ i : y_j = y_i}`` and negatives ``N(i) = {j : y_j ≠ y_i}``, the scalar
    ``mean over positive pairs (i, j) of -log(exp s_ij / (exp s_ij + Σ_{k∈N(i)} exp s_ik))``
    (NaN when there is no positive pair, as optax).
    """
    names = ("embeddings", "labels", "weights")
    backend = backend_of(embeddings, labels, names=names[:2])
    _require_floating(backend, backend.to_xp(embeddings) if backend.to_xp is not None else embeddings,
                      "embeddings")
    p = prepare(embeddings, labels, names=names, integer_target=True)
    xp, sg = p.xp, p.backend.stop_gradient
    if len(p.pred.shape) != 2:
        raise ValueError(f"polyloss: embeddings must be 2-D [batch, features], got shape "
                         f"{tuple(p.pred.shape)}")
    if len(p.target.shape) != 1 or p.target.shape[0] != p.pred.shape[0]:
        raise ValueError(f"polyloss: labels must have shape ({p.pred.shape[0]},) (one label per "
                         f"embedding), got {tuple(p.target.shape)}")
    if isinstance(temperature, (int, float)):
        temp = float(temperature)
    else:
        temp = prepare_extra(p, temperature, "temperature")
    unit = contrastive_core.unit_rows(p.pred, _float_eps(xp, p.out_dtype), xp)
    xcs = xp.matmul(unit, xp.permute_dims(unit, (1, 0))) / temp
    pos, neg = contrastive_core.pair_masks(p.target, xp)
    per_anchor, positives = contrastive_core.ntxent_terms(xcs, pos, neg, xp, sg)
    total, count = xp.sum(per_anchor), xp.sum(positives)
    return finish(p, xp.where(count > 0, total / xp.where(count > 0, count, 1.0), math.nan))

"""MXNet Gluon's losses (``mxnet.gluon.loss`` 1.9.1), reproduced exactly, on arrays of any backend.

Same names, constructor arguments and defaults, and the call ``(pred, label,
sample_weight=None)``. Each returns **one value per sample**: the elementwise loss times
``sample_weight`` (broadcast) times the constructor's scalar ``weight``, averaged over every
axis except ``batch_axis``. The batch mean happens in Gluon's training loop
(``Trainer.step(batch_size)``), not here. ``label`` is reshaped to ``pred``'s shape (they
must have the same number of elements), as Gluon does. ``L2Loss`` includes Gluon's ½;
``HuberLoss(rho)`` is smooth-L1 with ``beta = rho`` (``torch.nn.SmoothL1Loss``), not
``torch.nn.HuberLoss``.

Deliberate differences from Gluon (documented in docs/conventions.md):

- An empty batch returns an empty ``(0,)`` result; Gluon fails in shape inference.
- ``batch_axis`` is honoured for every array type (Gluon's ``mx.np`` mode ignores it and
  always averages over axes ``1..ndim-1``).
- A ``sample_weight`` that would enlarge the loss by broadcasting raises ``ValueError``.
- A non-positive ``rho`` raises ``ValueError`` (Gluon divides by it).
- ``SigmoidBCELoss`` on logits: the gradient at a logit of exactly 0 is ``σ(0) - label``
  (MXNet's ``relu`` and ``abs`` give ``-label`` there).
- ``SoftmaxCELoss`` sparse labels outside ``[0, C)`` raise ``ValueError`` naming ``label`` in
  eager calls (MXNet's ``pick`` silently clips them to the nearest class).
- ``PoissonNLLLoss(compute_full=True)`` is finite for zero counts (the Stirling term is
  masked where ``target <= 1`` before it is computed; MXNet gets NaN from ``0·log 0``).
"""

from __future__ import annotations

import itertools
import math
import sys
import weakref
from typing import Any

from polyloss._inputs import finish, prepare, prepare_extra
from polyloss._labels import as_index, check_class_labels
from polyloss.backends import backend_of, device_of
from polyloss.canonical import sequence
from polyloss.core import classification as cls_core
from polyloss.core import margin as margin_core
from polyloss.core import regression as core
from polyloss.core.embedding import safe_sqrt
from polyloss.reduction import align_weight, mean_or_nan

__all__ = [
    "Loss", "L1Loss", "L2Loss", "HuberLoss",
    "SigmoidBinaryCrossEntropyLoss", "SigmoidBCELoss", "SoftmaxCrossEntropyLoss", "SoftmaxCELoss",
    "KLDivLoss", "PoissonNLLLoss", "HingeLoss", "SquaredHingeLoss", "LogisticLoss",
    "CosineEmbeddingLoss", "TripletLoss", "CTCLoss",
    "SDMLLoss",
]

_NAMES = ("pred", "label", "sample_weight")


def _reshape_like(xp: Any, label: Any, pred: Any) -> Any:
    """Gluon's ``_reshape_like``: ``label`` takes ``pred``'s shape (same element count)."""
    if tuple(label.shape) == tuple(pred.shape):
        return label
    if math.prod(label.shape) != math.prod(pred.shape):
        raise ValueError(
            f"polyloss: label has shape {tuple(label.shape)} and pred has shape "
            f"{tuple(pred.shape)}; Gluon reshapes label to pred's shape, so they must have the "
            "same number of elements"
        )
    return xp.reshape(label, tuple(pred.shape))


def _apply_weighting(xp: Any, loss: Any, weight: float | None, sample_weight: Any) -> Any:
    """Gluon's ``_apply_weighting``: ``sample_weight`` first (broadcast), then the scalar."""
    if sample_weight is not None:
        loss = loss * align_weight(xp, sample_weight, tuple(loss.shape), prefix=False)
    if weight is not None:
        loss = loss * weight
    return loss


def _mean_except(xp: Any, loss: Any, batch_axis: int) -> Any:
    """Mean over every axis except ``batch_axis`` (Gluon's ``F.mean(..., exclude=True)``)."""
    ndim = len(loss.shape)
    if ndim == 0:
        return loss
    batch_axis = batch_axis % ndim
    axes = tuple(a for a in range(ndim) if a != batch_axis)
    if not axes:
        return loss
    if any(loss.shape[a] == 0 for a in axes):
        shape = (loss.shape[batch_axis],)
        return xp.full(shape, math.nan, dtype=loss.dtype, device=device_of(loss))
    return xp.mean(loss, axis=axes)


class Loss:
    """``mxnet.gluon.loss.Loss(weight, batch_axis)``: a global scalar ``weight`` and the
    batch axis that is kept.

    When ``mxnet`` has been imported before a loss is constructed, the instance is also a
    ``mxnet.gluon.loss.Loss`` (a ``HybridBlock``; see :class:`_GluonBlock`): MXNet inputs go
    through Gluon's ``Block.__call__``/``hybrid_forward`` and the block ``hybridize()``s.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> Loss:
        if "mxnet" in sys.modules:  # never imports MXNet: a Gluon user has imported it already
            cls = _gluon_class(cls)
        return super().__new__(cls)

    def __init__(self, weight: float | None, batch_axis: int, **kwargs: Any) -> None:
        if weight is not None and not isinstance(weight, (int, float)):
            raise TypeError(f"polyloss: weight must be a number or None, got {type(weight).__name__}")
        if isinstance(self, _GluonBlock):
            from mxnet.gluon.loss import Loss as GluonLoss

            GluonLoss.__init__(self, weight, batch_axis, **kwargs)  # prefix=, params=
        self._weight = weight
        self._batch_axis = batch_axis

    def _call(self, *args: Any) -> Any:
        return self.forward(*args)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(batch_axis={self._batch_axis}, w={self._weight})"

    def _elementwise(self, xp: Any, pred: Any, label: Any) -> Any:  # pragma: no cover
        raise NotImplementedError

    def _scale(self) -> float | None:
        return self._weight

    def __call__(self, pred: Any, label: Any, sample_weight: Any = None) -> Any:
        return self._call(pred, label, sample_weight)

    def forward(self, pred: Any, label: Any, sample_weight: Any = None) -> Any:
        with backend_of(pred, label, sample_weight, names=_NAMES).scope():
            p = prepare(pred, label, sample_weight, names=_NAMES)
            xp = p.xp
            label = _reshape_like(xp, p.target, p.pred)
            loss = self._elementwise(xp, p.pred, label)
            loss = _apply_weighting(xp, loss, self._scale(), p.weight)
            return finish(p, _mean_except(xp, loss, self._batch_axis))


class L2Loss(Loss):
    """``gluon.loss.L2Loss(weight=1., batch_axis=0)``: ``weight/2 · (label - pred)²`` per element,
    averaged per sample. Seed: ``L2Loss()(ones(2), 2*ones(2), [1, 2])`` is ``[0.5, 1.0]``."""

    def __init__(self, weight: float = 1.0, batch_axis: int = 0, **kwargs: Any) -> None:
        if weight is None:
            raise TypeError("polyloss: L2Loss needs a numeric weight (Gluon computes weight / 2)")
        super().__init__(weight, batch_axis, **kwargs)

    def _scale(self) -> float:
        return self._weight / 2

    def _elementwise(self, xp: Any, pred: Any, label: Any) -> Any:
        return core.squared_error(label, pred, xp=xp)


class L1Loss(Loss):
    """``gluon.loss.L1Loss(weight=None, batch_axis=0)``: ``|label - pred|`` averaged per sample."""

    def __init__(self, weight: float | None = None, batch_axis: int = 0, **kwargs: Any) -> None:
        super().__init__(weight, batch_axis, **kwargs)

    def _elementwise(self, xp: Any, pred: Any, label: Any) -> Any:
        return core.absolute_error(label, pred, xp=xp)


class HuberLoss(Loss):
    """``gluon.loss.HuberLoss(rho=1, weight=None, batch_axis=0)``: ``|r| - rho/2`` if ``|r| > rho``
    else ``r²/(2·rho)``, averaged per sample; that is smooth-L1 with ``beta = rho``."""

    def __init__(self, rho: float = 1, weight: float | None = None, batch_axis: int = 0,
                 **kwargs: Any) -> None:
        if not isinstance(rho, (int, float)) or not rho > 0:
            raise ValueError(f"polyloss: rho must be a number > 0, got {rho!r}")
        super().__init__(weight, batch_axis, **kwargs)
        self._rho = rho

    def _elementwise(self, xp: Any, pred: Any, label: Any) -> Any:
        return core.smooth_l1(label, pred, beta=float(self._rho), xp=xp)



# ---- classification -----------------------------------------------------------------------

_LOG_EPS = 1e-12  # Gluon adds 1e-12 inside its logs (SigmoidBCE from_sigmoid, KLDiv)


def _sum_except(xp: Any, loss: Any, batch_axis: int) -> Any:
    """Sum over every axis except ``batch_axis`` (``F.sum(..., exclude=True)``)."""
    ndim = len(loss.shape)
    batch_axis = batch_axis % ndim
    axes = tuple(a for a in range(ndim) if a != batch_axis)
    return xp.sum(loss, axis=axes) if axes else loss


def _gluon_softrelu_neg_abs(xp: Any, z: Any, positive: Any) -> Any:
    # Activation(-|z|, 'softrelu') = log1p(exp(-|z|)); |z| from the shared mask
    return xp.log1p(xp.exp(-xp.where(positive, z, -z)))


class SigmoidBinaryCrossEntropyLoss(Loss):
    """``gluon.loss.SigmoidBinaryCrossEntropyLoss(from_sigmoid=False, weight=None, batch_axis=0)``,
    called ``(pred, label, sample_weight=None, pos_weight=None)``; alias ``SigmoidBCELoss``.

    Logits (default): ``relu(z) - z·y + log1p(exp(-|z|))``, with ``pos_weight``
    ``z - z·y + (1 + (P-1)·y)·(log1p(exp(-|z|)) + relu(-z))``. Probabilities
    (``from_sigmoid=True``): ``-(P·y·log(p + 1e-12) + (1-y)·log(1 - p + 1e-12))`` (no clip: a
    perfect prediction gives a loss of about -1e-12 in float64). Mean per sample.
    """

    def __init__(self, from_sigmoid: bool = False, weight: float | None = None,
                 batch_axis: int = 0, **kwargs: Any) -> None:
        super().__init__(weight, batch_axis, **kwargs)
        self._from_sigmoid = from_sigmoid

    def __call__(self, pred: Any, label: Any, sample_weight: Any = None, pos_weight: Any = None) -> Any:
        return self._call(pred, label, sample_weight, pos_weight)

    def forward(self, pred: Any, label: Any, sample_weight: Any = None, pos_weight: Any = None) -> Any:
        names = _NAMES + ("pos_weight",)
        with backend_of(pred, label, sample_weight, pos_weight, names=names).scope():
            p = prepare(pred, label, sample_weight, names=_NAMES)
            xp = p.xp
            z = p.pred
            y = _reshape_like(xp, p.target, z)
            pw = prepare_extra(p, pos_weight, "pos_weight")
            if pw is not None:
                pw = align_weight(xp, pw, tuple(z.shape), "pos_weight", prefix=False)
            if self._from_sigmoid:
                positive = xp.log(z + _LOG_EPS) * y
                if pw is not None:
                    positive = positive * pw
                loss = -(positive + xp.log(1.0 - z + _LOG_EPS) * (1.0 - y))
            else:
                positive = z >= 0
                soft = _gluon_softrelu_neg_abs(xp, z, positive)
                if pw is None:
                    loss = xp.where(positive, z, 0.0) - z * y + soft
                else:
                    log_weight = 1.0 + (pw - 1.0) * y
                    loss = z - z * y + log_weight * (soft + xp.where(positive, 0.0, -z))
            loss = _apply_weighting(xp, loss, self._weight, p.weight)
            return finish(p, _mean_except(xp, loss, self._batch_axis))


SigmoidBCELoss = SigmoidBinaryCrossEntropyLoss


class SoftmaxCrossEntropyLoss(Loss):
    """``gluon.loss.SoftmaxCrossEntropyLoss(axis=-1, sparse_label=True, from_logits=False,
    weight=None, batch_axis=0)``; alias ``SoftmaxCELoss``.

    ``pred`` are logits (``log_softmax`` applied), or log-probabilities with
    ``from_logits=True``. Sparse labels (class indices, any dtype, ``pred``'s shape without
    ``axis``): ``-log p[label]``; dense labels (``pred``'s shape): ``-Σ label·log p`` over
    ``axis``. Mean per sample over the remaining axes.
    """

    def __init__(self, axis: int = -1, sparse_label: bool = True, from_logits: bool = False,
                 weight: float | None = None, batch_axis: int = 0, **kwargs: Any) -> None:
        super().__init__(weight, batch_axis, **kwargs)
        self._axis = axis
        self._sparse_label = sparse_label
        self._from_logits = from_logits

    def forward(self, pred: Any, label: Any, sample_weight: Any = None) -> Any:
        with backend_of(pred, label, sample_weight, names=_NAMES).scope():
            p = prepare(pred, label, sample_weight, names=_NAMES, integer_target=True)
            xp = p.xp
            ndim = len(p.pred.shape)
            axis = self._axis % ndim
            if self._sparse_label:
                labels = self._sparse_labels(p, axis)
                num_classes = p.pred.shape[axis]
                inside = check_class_labels(p.backend, labels, num_classes, None, "label")
                labels = as_index(p.backend, labels, checked=inside)
                in_range = None
                if not inside:  # unchecked (under a trace): out-of-range labels give NaN
                    labels, _, in_range = cls_core.safe_labels(labels, num_classes, None, xp)
                if self._from_logits:
                    loss = -cls_core.take_class(p.pred, labels, axis, xp)
                else:
                    loss = cls_core.softmax_cross_entropy(p.pred, labels, axis, xp)
                if in_range is not None:
                    loss = xp.where(in_range, loss, math.nan)
                if ndim == 2 and p.weight is None and self._weight is None and (
                        axis != self._batch_axis % ndim):
                    return finish(p, loss)  # the per-sample mean of one value is that value
                loss = xp.expand_dims(loss, axis=axis)
            else:
                logp = p.pred if self._from_logits else cls_core.log_softmax(p.pred, axis, xp)
                target = p.target
                if target.dtype != logp.dtype:
                    target = xp.astype(target, logp.dtype)
                target = _reshape_like(xp, target, logp)
                loss = -xp.sum(logp * target, axis=axis, keepdims=True)
            loss = _apply_weighting(xp, loss, self._weight, p.weight)
            return finish(p, _mean_except(xp, loss, self._batch_axis))

    def _sparse_labels(self, p: Any, axis: int) -> Any:
        expected = tuple(d for i, d in enumerate(p.pred.shape) if i != axis)
        shape = tuple(p.target.shape)
        if shape == expected:
            return p.target
        if math.prod(shape) == math.prod(expected):  # e.g. (N, 1) labels for (N, C)
            return p.xp.reshape(p.target, expected)
        raise ValueError(f"polyloss: sparse label has shape {shape}; expected {expected} "
                         f"(pred's shape {tuple(p.pred.shape)} without axis {axis})")


SoftmaxCELoss = SoftmaxCrossEntropyLoss


class KLDivLoss(Loss):
    """``gluon.loss.KLDivLoss(from_logits=True, axis=-1, weight=None, batch_axis=0)``:
    ``label·(log(label + 1e-12) - pred)`` **summed** per sample (MXNet 1.9.1). ``pred`` is
    ``log q``; with ``from_logits=False`` it is logits and ``log_softmax`` is applied."""

    def __init__(self, from_logits: bool = True, axis: int = -1, weight: float | None = None,
                 batch_axis: int = 0, **kwargs: Any) -> None:
        super().__init__(weight, batch_axis, **kwargs)
        self._from_logits = from_logits
        self._axis = axis

    def forward(self, pred: Any, label: Any, sample_weight: Any = None) -> Any:
        with backend_of(pred, label, sample_weight, names=_NAMES).scope():
            p = prepare(pred, label, sample_weight, names=_NAMES)
            xp = p.xp
            logq = p.pred if self._from_logits else cls_core.log_softmax(p.pred, self._axis, xp)
            label = _reshape_like(xp, p.target, logq)
            loss = label * (xp.log(label + _LOG_EPS) - logq)
            loss = _apply_weighting(xp, loss, self._weight, p.weight)
            return finish(p, _sum_except(xp, loss, self._batch_axis))


class PoissonNLLLoss(Loss):
    """``gluon.loss.PoissonNLLLoss(weight=None, from_logits=True, batch_axis=0,
    compute_full=False)``, called ``(pred, target, sample_weight=None, epsilon=1e-08)``:
    ``exp(z) - y·z`` (log rate) or ``r - y·log(r + epsilon)``, plus the Stirling term where
    ``y > 1`` with ``compute_full``; the **mean over everything** (a scalar), unlike every
    other Gluon loss."""

    def __init__(self, weight: float | None = None, from_logits: bool = True, batch_axis: int = 0,
                 compute_full: bool = False, **kwargs: Any) -> None:
        super().__init__(weight, batch_axis, **kwargs)
        self._from_logits = from_logits
        self._compute_full = compute_full

    def __call__(self, pred: Any, target: Any, sample_weight: Any = None, epsilon: float = 1e-08) -> Any:
        return self._call(pred, target, sample_weight, epsilon)

    def forward(self, pred: Any, target: Any, sample_weight: Any = None, epsilon: float = 1e-08) -> Any:
        with backend_of(pred, target, sample_weight, names=_NAMES).scope():
            p = prepare(pred, target, sample_weight, names=_NAMES)
            xp = p.xp
            target = _reshape_like(xp, p.target, p.pred)
            loss = cls_core.poisson_nll(p.pred, target, log_input=self._from_logits,
                                        eps=float(epsilon), xp=xp)
            if self._compute_full:
                loss = loss + cls_core.stirling_term(target, xp)
            loss = _apply_weighting(xp, loss, self._weight, p.weight)
            return finish(p, mean_or_nan(xp, loss))



# ---- margin losses ------------------------------------------------------------------------

class HingeLoss(Loss):
    """``gluon.loss.HingeLoss(margin=1, weight=None, batch_axis=0)``: ``relu(margin - pred·label)``
    averaged per sample; labels are used as given (±1 expected, no 0/1 conversion), and the
    gradient at the margin is 0 (``relu``)."""

    def __init__(self, margin: float = 1, weight: float | None = None, batch_axis: int = 0,
                 **kwargs: Any) -> None:
        super().__init__(weight, batch_axis, **kwargs)
        self._margin = margin

    def _elementwise(self, xp: Any, pred: Any, label: Any) -> Any:
        return margin_core.hinge(pred, label, float(self._margin), xp, tie="inactive")


class SquaredHingeLoss(HingeLoss):
    """``gluon.loss.SquaredHingeLoss(margin=1, weight=None, batch_axis=0)``:
    ``relu(margin - pred·label)²`` averaged per sample."""

    def _elementwise(self, xp: Any, pred: Any, label: Any) -> Any:
        h = super()._elementwise(xp, pred, label)
        return h * h


class LogisticLoss(Loss):
    """``gluon.loss.LogisticLoss(weight=None, batch_axis=0, label_format='signed')``:
    ``relu(x) - x·y + softrelu(-|x|)`` with ``y = (label + 1)/2`` for ±1 labels (``'signed'``)
    or the 0/1 label itself (``'binary'``), averaged per sample. 0/1 labels under the default
    ``'signed'`` silently become {0.5, 1}, as in Gluon."""

    def __init__(self, weight: float | None = None, batch_axis: int = 0,
                 label_format: str = "signed", **kwargs: Any) -> None:
        super().__init__(weight, batch_axis, **kwargs)
        if label_format not in ("signed", "binary"):
            raise ValueError(f"label_format can only be signed or binary, recieved {label_format}.")
        self._label_format = label_format

    def _elementwise(self, xp: Any, pred: Any, label: Any) -> Any:
        if self._label_format == "signed":
            label = (label + 1.0) / 2.0
        positive = pred >= 0
        return xp.where(positive, pred, 0.0) - pred * label + _gluon_softrelu_neg_abs(xp, pred, positive)



# ---- embedding losses ---------------------------------------------------------------------

class CosineEmbeddingLoss(Loss):
    """``gluon.loss.CosineEmbeddingLoss(weight=None, batch_axis=0, margin=0)``, called
    ``(input1, input2, label, sample_weight=None)``: ``1 - cos`` where ``label = 1``,
    ``max(0, cos - margin)`` where ``label = -1`` (0 for other labels), with
    ``cos = x·y / max(‖x‖‖y‖, 1e-12)`` over the last axis. Returns shape ``(N, 1)``."""

    def __init__(self, weight: float | None = None, batch_axis: int = 0, margin: float = 0,
                 **kwargs: Any) -> None:
        super().__init__(weight, batch_axis, **kwargs)
        self._margin = margin

    def __call__(self, input1: Any, input2: Any, label: Any, sample_weight: Any = None) -> Any:
        return self._call(input1, input2, label, sample_weight)

    def forward(self, input1: Any, input2: Any, label: Any, sample_weight: Any = None) -> Any:
        names = ("input1", "input2", "sample_weight", "label")
        with backend_of(input1, input2, sample_weight, label, names=names).scope():
            p = prepare(input1, input2, sample_weight, names=names[:3])
            xp = p.xp
            x1 = _reshape_like(xp, p.pred, p.target)
            x2 = p.target
            y = xp.reshape(prepare_extra(p, label, "label"), (-1, 1))
            dot = xp.reshape(xp.sum(x1 * x2, axis=-1), (-1, 1))
            # safe square roots: a zero vector has a zero gradient (MXNet's norm gives NaN)
            norm1 = safe_sqrt(xp.sum(x1 * x1, axis=-1), xp)
            norms = xp.reshape(norm1 * safe_sqrt(xp.sum(x2 * x2, axis=-1), xp), (-1, 1))
            cos = dot / xp.where(norms < _LOG_EPS, _LOG_EPS, norms)
            similar = xp.where(y == 1, 1.0 - cos, 0.0)
            dissimilar = xp.where(y == -1, cos - self._margin, 0.0)
            loss = similar + xp.where(dissimilar <= 0, 0.0, dissimilar)
            return finish(p, _apply_weighting(xp, loss, self._weight, p.weight))


class TripletLoss(Loss):
    """``gluon.loss.TripletLoss(margin=1, weight=None, batch_axis=0)``, called
    ``(pred, positive, negative)``: ``relu(Σ(positive - pred)² - Σ(negative - pred)² + margin)``
    with the sums over every non-batch axis (squared distances, no square root)."""

    def __init__(self, margin: float = 1, weight: float | None = None, batch_axis: int = 0,
                 **kwargs: Any) -> None:
        super().__init__(weight, batch_axis, **kwargs)
        self._margin = margin

    def __call__(self, pred: Any, positive: Any, negative: Any) -> Any:
        return self._call(pred, positive, negative)

    def forward(self, pred: Any, positive: Any, negative: Any) -> Any:
        names = ("pred", "positive", "sample_weight", "negative")
        with backend_of(pred, positive, None, negative, names=names).scope():
            p = prepare(pred, positive, names=names[:3])
            xp = p.xp
            pos = _reshape_like(xp, p.target, p.pred)
            neg = _reshape_like(xp, prepare_extra(p, negative, "negative"), p.pred)
            diff = (pos - p.pred) * (pos - p.pred) - (neg - p.pred) * (neg - p.pred)
            loss = margin_core.hinge_part(_sum_except(xp, diff, self._batch_axis) + self._margin, xp,
                                          tie="inactive")
            return finish(p, _apply_weighting(xp, loss, self._weight, None))



# ---- sequence: CTC ---------------------------------------------------------------------------

_CTC_NAMES = {"labels": "label", "label_lengths": "label_lengths", "input_lengths": "pred_lengths"}


class CTCLoss(Loss):
    """``gluon.loss.CTCLoss(layout='NTC', label_layout='NT', weight=None)``, called
    ``(pred, label, pred_lengths=None, label_lengths=None, sample_weight=None)``.

    CTC per sequence ``(N,)`` on logits (softmax is applied), with the **last** class
    ``C - 1`` as the blank. Without ``label_lengths`` a label row ends at its first ``-1``;
    without ``pred_lengths`` every sequence uses all ``T`` frames. A label sequence that
    cannot fit its frames gives 0 (gradient 0), as MXNet does; a label dimension longer than
    ``T`` is an error. ``sample_weight`` and ``weight`` multiply the result.
    """

    def __init__(self, layout: str = "NTC", label_layout: str = "NT", weight: float | None = None,
                 **kwargs: Any) -> None:
        if layout not in ("NTC", "TNC"):
            raise ValueError(f"Only 'NTC' and 'TNC' layouts for pred are supported. Got: {layout}")
        if label_layout not in ("NT", "TN"):
            raise ValueError(f"Only 'NT' and 'TN' layouts for label are supported. Got: {label_layout}")
        self._layout = layout
        self._label_layout = label_layout
        super().__init__(weight, label_layout.find("N"), **kwargs)

    def __call__(self, pred: Any, label: Any, pred_lengths: Any = None, label_lengths: Any = None,
                 sample_weight: Any = None) -> Any:
        return self._call(pred, label, pred_lengths, label_lengths, sample_weight)

    def forward(self, pred: Any, label: Any, pred_lengths: Any = None, label_lengths: Any = None,
                sample_weight: Any = None) -> Any:
        names = ("pred", "label", "sample_weight", "pred_lengths", "label_lengths")
        backend = backend_of(pred, label, sample_weight, sequence.array_or_none(pred_lengths),
                             sequence.array_or_none(label_lengths), names=names)
        with backend.scope():
            p = prepare(pred, label, sample_weight, names=names[:3], integer_target=True)
            xp = p.xp
            if len(p.pred.shape) != 3 or len(p.target.shape) != 2:
                raise ValueError(f"polyloss: pred must be 3-D ({self._layout}) and label 2-D "
                                 f"({self._label_layout}), got shapes {tuple(p.pred.shape)} and "
                                 f"{tuple(p.target.shape)}")
            x = p.pred if self._layout == "NTC" else xp.permute_dims(p.pred, (1, 0, 2))
            y = sequence.labels_array(backend, p.target, "label", x)
            if self._batch_axis == 1:
                y = xp.permute_dims(y, (1, 0))
            n, t_max, num_classes = x.shape
            if y.shape[0] != n:
                raise ValueError(f"polyloss: label has batch size {y.shape[0]} but pred has {n}")
            if y.shape[1] > t_max:
                raise ValueError(f"polyloss: label has {y.shape[1]} positions but pred only {t_max} "
                                 "frames; MXNet requires the label dimension to be at most T")
            if label_lengths is None:
                label_lengths = _first_padding(xp, y)
            else:
                label_lengths = sequence.lengths_array(backend, label_lengths, n, "label_lengths", x)
            if pred_lengths is None:
                pred_lengths = t_max
            pred_lengths = sequence.lengths_array(backend, pred_lengths, n, "pred_lengths", x)
            log_probs = cls_core.log_softmax(x, -1, xp)
            nll, feasible, _ = sequence.sequence_nll(
                backend, log_probs, y, label_lengths, pred_lengths,
                sequence.frames_from_lengths(pred_lengths, t_max, xp), blank=num_classes - 1,
                log_zero=sequence.LOG_ZERO, names=_CTC_NAMES, too_long="allow")
            loss = xp.where(feasible, nll, xp.zeros_like(nll))
            return finish(p, _apply_weighting(xp, loss, self._weight, p.weight))


def _first_padding(xp: Any, labels: Any) -> Any:
    # MXNet reads each row up to its first -1 (padding): the count of leading non-padding labels
    kept = xp.astype(labels != -1, labels.dtype)
    if labels.shape[1] == 0:
        return xp.sum(kept, axis=1)
    # a running product of the "kept" flags is 1 up to the first -1 and 0 after it
    running = [kept[:, 0]]
    for j in range(1, labels.shape[1]):
        running.append(running[-1] * kept[:, j])
    return xp.sum(xp.stack(running, axis=1), axis=1)


# ---- metric learning: SDML ----------------------------------------------------------------

class SDMLLoss(Loss):
    """``gluon.loss.SDMLLoss(smoothing_parameter=0.3, weight=1., batch_axis=0)``, called
    ``(x1, x2)`` with two aligned batches of vectors ``(N, D)`` (``x2[i]`` is the positive of
    ``x1[i]``, every other row a negative): the smoothed deep metric learning loss (Bonadiman et
    al., 2019), one value per sample::

        d_ij  = Σ_k (x1_ik - x2_jk)²
        t_ij  = 1 - s if i = j else s / (N - 1)
        loss_i = Σ_j t_ij·(log(t_ij + 1e-12) - log_softmax(-d_i)_j)

    that is Gluon's ``KLDivLoss`` of the row-wise ``log_softmax(-d)`` against the smoothed
    identity. As in MXNet 1.9.1, ``weight`` and ``batch_axis`` are accepted and **not used**
    (Gluon's internal ``KLDivLoss`` has no weight and batch axis 0), and a batch of one gives NaN
    (``0·s / 0`` in the off-diagonal labels). Equivalents: ``mxnet.gluon.loss.SDMLLoss`` only.
    """

    def __init__(self, smoothing_parameter: float = 0.3, weight: float | None = 1.0, batch_axis: int = 0,
                 **kwargs: Any) -> None:
        super().__init__(weight, batch_axis, **kwargs)
        if isinstance(smoothing_parameter, bool) or not isinstance(smoothing_parameter, (int, float)):
            raise TypeError(f"polyloss: smoothing_parameter must be a number, got {smoothing_parameter!r}")
        self.smoothing_parameter = smoothing_parameter

    def __call__(self, x1: Any, x2: Any) -> Any:
        return self._call(x1, x2)

    def forward(self, x1: Any, x2: Any) -> Any:
        names = ("x1", "x2", "sample_weight")
        with backend_of(x1, x2, names=names).scope():
            p = prepare(x1, x2, names=names)
            xp, a, b = p.xp, p.pred, p.target
            if len(a.shape) != 2 or tuple(a.shape) != tuple(b.shape):
                raise ValueError(f"polyloss: x1 and x2 must be 2-D batches of vectors of one shape "
                                 f"(N, D); got x1 {tuple(a.shape)} and x2 {tuple(b.shape)}")
            n = a.shape[0]
            if n == 0:
                return finish(p, xp.zeros((0,), dtype=a.dtype, device=device_of(a)))
            diff = xp.expand_dims(a, axis=1) - xp.expand_dims(b, axis=0)
            distances = xp.sum(diff * diff, axis=2)
            log_probabilities = cls_core.log_softmax(-distances, 1, xp)
            rows = xp.arange(n, device=device_of(a))
            gold = xp.astype(xp.expand_dims(rows, axis=1) == xp.expand_dims(rows, axis=0), a.dtype)
            s = self.smoothing_parameter
            # Gluon's order: gold·(1 - s) + (1 - gold)·s / (N - 1), elementwise in the array's dtype
            # (for N = 1 the off-diagonal term is 0·s/0 = NaN, as in Gluon)
            off = (1.0 - gold) * s
            off = off / (n - 1) if n > 1 else off * math.nan
            labels = gold * (1.0 - s) + off
            loss = labels * (xp.log(labels + _LOG_EPS) - log_probabilities)
            return finish(p, xp.sum(loss, axis=1))


# ---- the Gluon block ------------------------------------------------------------------------
# Built only once MXNet is imported (``import polyloss.gluon`` never imports it): each loss
# class gets a subclass ``(_GluonBlock, <class>, mxnet.gluon.loss.Loss)`` of the same name, and
# ``Loss.__new__`` makes instances of it.

_GLUON_CLASSES: dict[type, type] = {}
_GRAPH_KEYS = itertools.count()


def _gluon_class(cls: type) -> type:
    """``cls`` as a Gluon ``HybridBlock`` loss (``cls`` itself if it is one already)."""
    if issubclass(cls, _GluonBlock):
        return cls
    block = _GLUON_CLASSES.get(cls)
    if block is None:
        from mxnet.gluon.loss import Loss as GluonLoss  # mxnet is imported already (Loss.__new__)

        block = type(cls.__name__, (_GluonBlock, cls, GluonLoss), {
            "__module__": cls.__module__, "__qualname__": cls.__qualname__, "__doc__": cls.__doc__,
        })
        _GLUON_CLASSES[cls] = block
    return block


def _is_mxnet_value(x: Any) -> bool:
    import mxnet as mx

    return isinstance(x, (mx.nd.NDArray, mx.sym.Symbol))


class _GluonBlock:
    """What makes a polyloss Gluon loss a ``mxnet.gluon.loss.Loss`` drop-in.

    A call whose arrays are all MXNet values (``mx.nd``/``mx.np`` arrays, or symbols when the
    loss sits inside a hybridized parent) goes through Gluon's ``Block.__call__`` (hooks),
    ``HybridBlock.forward`` and :meth:`hybrid_forward`; any other call keeps polyloss's own
    path. Arguments that are not MXNet values (``None``, Python numbers such as
    ``PoissonNLLLoss``'s ``epsilon``) are held by the block, not passed to Gluon, which accepts
    only arrays; a new pattern of them rebuilds a hybridized block's cached graph.

    ``hybrid_forward(F, ...)``: with ``F = mx.nd`` (imperative) the polyloss computation runs on
    the arrays and is recorded by autograd op by op; with ``F = mx.sym`` (hybridized) it
    becomes one ``Custom`` node (:func:`polyloss.backends.mxnet.call_in_graph`) that runs the
    same computation on the node's values, because symbols carry no shapes and every loss
    reads them. Both give the imperative values and gradients, bit for bit.
    """

    _polyloss_static: tuple | None = None

    def _call(self, *args: Any) -> Any:
        if not all(_is_mxnet_value(a) for a in args if hasattr(a, "shape")):
            return self._forward(*args)  # NumPy, torch, JAX, TF (or a mix polyloss will name)
        dynamic = tuple(_is_mxnet_value(a) for a in args)
        static = tuple(None if d else a for a, d in zip(args, dynamic, strict=True))
        signature = (dynamic, static)
        if self._polyloss_static is not None and self._polyloss_static != signature:
            self._clear_cached_op()
        self._polyloss_static = signature
        from mxnet.gluon.block import Block

        return Block.__call__(self, *(a for a, d in zip(args, dynamic, strict=True) if d))

    def forward(self, *args: Any) -> Any:
        from mxnet.gluon import HybridBlock

        return HybridBlock.forward(self, *args)

    def _forward(self, *args: Any) -> Any:
        """polyloss's computation: the ``forward`` of the loss class this block extends."""
        return super().forward(*args)

    def hybrid_forward(self, F: Any, *values: Any) -> Any:  # noqa: N803 - Gluon's name
        """The loss of ``values`` (the MXNet arguments of the call, in order)."""
        import mxnet as mx

        signature = self._polyloss_static
        if F is mx.nd:
            return self._forward(*_merge(signature, values))
        from polyloss.backends.mxnet import call_in_graph

        ref = weakref.ref(self)  # the op registry must not keep the block alive

        def compute(*arrays: Any) -> Any:
            block = ref()
            if block is None:  # pragma: no cover - a graph outliving its block
                raise RuntimeError("polyloss: the Gluon loss of this graph no longer exists")
            return block._forward(*_merge(signature, arrays))

        return call_in_graph(compute, list(values), f"{type(self).__name__}-{next(_GRAPH_KEYS)}")


def _merge(signature: tuple | None, values: tuple) -> tuple:
    """The full argument list: ``values`` at the MXNet positions, the held ones elsewhere."""
    if signature is None:
        return tuple(values)
    dynamic, static = signature
    it = iter(values)
    return tuple(next(it) if d else s for d, s in zip(dynamic, static, strict=True))

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
"""

from __future__ import annotations

import math
from typing import Any

from polyloss._inputs import finish, prepare
from polyloss.backends import backend_of, device_of
from polyloss.core import regression as core
from polyloss.reduction import align_weight

__all__ = ["Loss", "L1Loss", "L2Loss", "HuberLoss"]

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
    batch axis that is kept."""

    def __init__(self, weight: float | None, batch_axis: int, **kwargs: Any) -> None:
        if weight is not None and not isinstance(weight, (int, float)):
            raise TypeError(f"polyloss: weight must be a number or None, got {type(weight).__name__}")
        self._weight = weight
        self._batch_axis = batch_axis

    def __repr__(self) -> str:
        return f"{type(self).__name__}(batch_axis={self._batch_axis}, w={self._weight})"

    def _elementwise(self, xp: Any, pred: Any, label: Any) -> Any:  # pragma: no cover
        raise NotImplementedError

    def _scale(self) -> float | None:
        return self._weight

    def __call__(self, pred: Any, label: Any, sample_weight: Any = None) -> Any:
        return self.forward(pred, label, sample_weight)

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

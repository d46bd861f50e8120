"""Canonical regression losses.

Signature: ``loss(pred, target, *, reduction="mean", sample_weight=None,
normalizer="count", ...)``, prediction first. ``pred`` and ``target`` must have the same
shape (a pair that would broadcast, such as ``(N, 1)`` against ``(N,)``, is a
``ValueError``). ``reduction`` is ``"none"``, ``"sum"`` or ``"mean"``; ``sample_weight``
multiplies the elementwise loss (the loss's shape, a leading part of it such as ``(N,)``,
or a shape that broadcasts to it); the weighted ``"mean"`` divides by the element count
(``normalizer="count"``) or by the sum of the weights (``"sum_of_weights"``). The mean of
an empty batch is NaN. Arrays of any supported framework in, the same framework out, with
autograd intact.
"""

from __future__ import annotations

import math
from typing import Any

from polyloss._inputs import check_same_shape, finish, prepare
from polyloss.backends import backend_of
from polyloss.canonical._common import NAMES, elementwise_loss
from polyloss.core import regression as core
from polyloss.reduction import NORMALIZERS, REDUCTIONS, check_choice, reduce_loss

__all__ = ["mse", "mae", "l1", "rmse", "huber", "smooth_l1", "log_cosh", "mape", "msle", "quantile"]


def mse(
    pred: Any, target: Any, *, reduction: str = "mean", sample_weight: Any = None,
    normalizer: str | float | Any = "count",
) -> Any:
    """Mean squared error: ``(pred - target)²``, reduced.

    Equivalents: ``torch.nn.MSELoss``, ``keras.losses.MeanSquaredError``,
    ``optax.losses.squared_error(...).mean()``, ``2 * gluon.loss.L2Loss()`` (Gluon halves it).
    """
    return elementwise_loss(
        core.squared_error, pred, target,
        reduction=reduction, sample_weight=sample_weight, normalizer=normalizer,
    )


def mae(
    pred: Any, target: Any, *, reduction: str = "mean", sample_weight: Any = None,
    normalizer: str | float | Any = "count",
) -> Any:
    """Mean absolute error: ``|pred - target|``, reduced. Its gradient at a zero residual is 0.

    Equivalents: ``torch.nn.L1Loss``, ``keras.losses.MeanAbsoluteError``,
    ``gluon.loss.L1Loss`` (per sample).
    """
    return elementwise_loss(
        core.absolute_error, pred, target,
        reduction=reduction, sample_weight=sample_weight, normalizer=normalizer,
    )


l1 = mae


def rmse(
    pred: Any, target: Any, *, reduction: str = "mean", sample_weight: Any = None,
    normalizer: str | float | Any = "count", epsilon: float = 0.0,
) -> Any:
    """Root mean squared error: ``sqrt(reduce((pred - target)²) + epsilon)``.

    The square root is taken after the reduction (``"none"`` gives ``sqrt(w·r² + epsilon)``
    per element). Residuals are rescaled by their largest magnitude inside, so float32
    residuals of 1e20 or 1e-20 neither overflow nor lose precision. ``epsilon > 0`` keeps
    the gradient finite at a perfect fit (the seeds' ``RMSELoss`` is ``sqrt(mse + 1e-7)``).
    No framework ships RMSE as a loss.
    """
    _check_epsilon(epsilon)
    check_choice("reduction", reduction, REDUCTIONS)
    check_choice("normalizer", normalizer, NORMALIZERS)
    with backend_of(pred, target, sample_weight, names=NAMES).scope():
        p = prepare(pred, target, sample_weight, names=NAMES)
        check_same_shape(p.pred, p.target, NAMES[:2])
        xp = p.xp

        def reduce(loss: Any) -> Any:
            return reduce_loss(xp, loss, reduction, p.weight, normalizer)

        out = core.root_mean_squared_error(
            p.pred, p.target, epsilon=float(epsilon), reduce=reduce, xp=xp,
            per_element=reduction == "none",
        )
        return finish(p, out)


def huber(
    pred: Any, target: Any, *, delta: float = 1.0, reduction: str = "mean",
    sample_weight: Any = None, normalizer: str | float | Any = "count",
) -> Any:
    """Huber loss: ``½r²`` where ``|r| <= delta``, else ``delta·(|r| - ½·delta)``; ``r = pred - target``.

    Equivalents: ``torch.nn.HuberLoss(delta)``, ``keras.losses.Huber(delta)``,
    ``optax.losses.huber_loss(delta=delta)``. Note ``torch.nn.SmoothL1Loss(beta)`` and
    ``gluon.loss.HuberLoss(rho)`` are ``huber(delta) / delta`` (see :func:`smooth_l1`).
    """
    _check_positive("delta", delta)
    return elementwise_loss(
        core.huber, pred, target, delta=float(delta),
        reduction=reduction, sample_weight=sample_weight, normalizer=normalizer,
    )


def smooth_l1(
    pred: Any, target: Any, *, beta: float = 1.0, reduction: str = "mean",
    sample_weight: Any = None, normalizer: str | float | Any = "count",
) -> Any:
    """Smooth L1: ``½r²/beta`` where ``|r| < beta``, else ``|r| - ½·beta``; ``beta = 0`` is L1.

    Equal to ``huber(delta=beta) / beta``. Equivalents: ``torch.nn.SmoothL1Loss(beta)``,
    ``gluon.loss.HuberLoss(rho=beta)``.
    """
    if not isinstance(beta, (int, float)) or beta < 0 or math.isnan(beta):
        raise ValueError(f"polyloss: beta must be a number >= 0, got {beta!r}")
    return elementwise_loss(
        core.smooth_l1, pred, target, beta=float(beta),
        reduction=reduction, sample_weight=sample_weight, normalizer=normalizer,
    )


def log_cosh(
    pred: Any, target: Any, *, reduction: str = "mean", sample_weight: Any = None,
    normalizer: str | float | Any = "count",
) -> Any:
    """Log-cosh: ``log(cosh(pred - target))``, computed without overflow.

    Equivalents: ``keras.losses.LogCosh``, ``optax.losses.log_cosh``.
    """
    return elementwise_loss(
        core.log_cosh, pred, target,
        reduction=reduction, sample_weight=sample_weight, normalizer=normalizer,
    )


def mape(
    pred: Any, target: Any, *, reduction: str = "mean", sample_weight: Any = None,
    normalizer: str | float | Any = "count", epsilon: float = 0.0,
) -> Any:
    """Mean absolute percentage error: ``100·|target - pred| / max(|target|, epsilon)``.

    With the default ``epsilon = 0`` a zero target gives ``inf`` (or NaN when the prediction
    is also 0), as the mathematics says; ``keras.losses.MeanAbsolutePercentageError`` is
    ``epsilon=1e-7``.
    """
    _check_epsilon(epsilon)
    return elementwise_loss(
        core.relative_absolute_error, pred, target, epsilon=float(epsilon),
        reduction=reduction, sample_weight=sample_weight, normalizer=normalizer,
        post=lambda xp, x: 100.0 * x,
    )


def msle(
    pred: Any, target: Any, *, reduction: str = "mean", sample_weight: Any = None,
    normalizer: str | float | Any = "count", epsilon: float | None = None,
) -> Any:
    """Mean squared logarithmic error: ``(log1p(pred) - log1p(target))²``.

    Defined for values > -1 (NaN below). With ``epsilon``, both are clipped below at
    ``epsilon`` first, as ``keras.losses.MeanSquaredLogarithmicError`` does with 1e-7.
    """
    if epsilon is not None:
        _check_epsilon(epsilon)
        epsilon = float(epsilon)
    return elementwise_loss(
        core.squared_log_error, pred, target, epsilon=epsilon,
        reduction=reduction, sample_weight=sample_weight, normalizer=normalizer,
    )


def quantile(
    pred: Any, target: Any, *, q: float = 0.5, reduction: str = "mean",
    sample_weight: Any = None, normalizer: str | float | Any = "count",
) -> Any:
    """Quantile (pinball) loss: ``max(q·r, (q - 1)·r)`` with ``r = target - pred``.

    ``q = 0.5`` is half the absolute error. At ``r = 0`` the gradient with respect to
    ``pred`` is ``-q`` on every backend. No framework ships it as a loss
    (``tfa.losses.PinballLoss`` did, for TF 2 add-ons).
    """
    if not isinstance(q, (int, float)) or not 0.0 <= q <= 1.0:
        raise ValueError(f"polyloss: q must be a number in [0, 1], got {q!r}")
    return elementwise_loss(
        core.pinball, pred, target, q=float(q),
        reduction=reduction, sample_weight=sample_weight, normalizer=normalizer,
    )


def _check_epsilon(epsilon: Any) -> None:
    if not isinstance(epsilon, (int, float)) or not epsilon >= 0 or epsilon == math.inf:
        raise ValueError(f"polyloss: epsilon must be a finite number >= 0, got {epsilon!r}")


def _check_positive(name: str, value: Any) -> None:
    if not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"polyloss: {name} must be a number > 0, got {value!r}")

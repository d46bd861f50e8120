"""What ``polyloss parity`` checks: the canonical losses against the NumPy float64 oracle,
and each convention mirror against its framework's real native loss.

A case is written once as ``call(lib, pred, target, weight)``, where ``lib`` is either the
polyloss module (``polyloss``, ``polyloss.torch``, ...) or the native namespace
(``torch.nn`` + ``torch.nn.functional``, ``keras.losses``, ``mxnet.gluon.loss``,
``optax.losses``), so both sides run the very same spelling.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Case:
    family: str  # loss family, e.g. "huber"
    label: str  # the call as the user would write it
    convention: str  # "polyloss" (canonical), "torch", "keras", "gluon" or "optax"
    call: Callable[..., Any]  # call(lib, pred, target, weight) -> array
    weighted: bool = False  # pass a sample weight of the prediction's shape / per sample
    per_sample_weight: bool = False
    domain: str = "real"  # "real" or "positive" (inputs > 0: MAPE, MSLE)
    # Cases whose formula cancels (result much smaller than its terms): absolute tolerance
    # is a few ulps of this magnitude.
    term_scale: float = 0.0
    edges: tuple[str, ...] = ("zero_residual", "at_threshold", "tiny", "batch1")
    skip_native_edges: tuple[str, ...] = field(default_factory=tuple)


def _w(weighted: Any) -> dict:
    return {} if weighted is None else {"sample_weight": weighted}


_POSITIVE_EDGES = ("zero_residual", "batch1")

# ---- canonical --------------------------------------------------------------------------

CANONICAL: list[Case] = [
    Case("mse", "polyloss.mse(pred, target)", "polyloss", lambda m, p, t, w: m.mse(p, t)),
    Case("mse", "polyloss.mse(pred, target, reduction='none')", "polyloss",
         lambda m, p, t, w: m.mse(p, t, reduction="none")),
    Case("mse", "polyloss.mse(pred, target, sample_weight=w, normalizer='sum_of_weights')",
         "polyloss", lambda m, p, t, w: m.mse(p, t, sample_weight=w, normalizer="sum_of_weights"),
         weighted=True, per_sample_weight=True),
    Case("mae", "polyloss.mae(pred, target, reduction='sum')", "polyloss",
         lambda m, p, t, w: m.mae(p, t, reduction="sum")),
    Case("mae", "polyloss.mae(pred, target, sample_weight=w)", "polyloss",
         lambda m, p, t, w: m.mae(p, t, sample_weight=w), weighted=True),
    Case("rmse", "polyloss.rmse(pred, target, epsilon=1e-7)", "polyloss",
         lambda m, p, t, w: m.rmse(p, t, epsilon=1e-7)),
    Case("huber", "polyloss.huber(pred, target, delta=1.0)", "polyloss",
         lambda m, p, t, w: m.huber(p, t, delta=1.0)),
    Case("huber", "polyloss.huber(pred, target, delta=2.5, reduction='none')", "polyloss",
         lambda m, p, t, w: m.huber(p, t, delta=2.5, reduction="none")),
    Case("smooth_l1", "polyloss.smooth_l1(pred, target, beta=0.5)", "polyloss",
         lambda m, p, t, w: m.smooth_l1(p, t, beta=0.5)),
    Case("smooth_l1", "polyloss.smooth_l1(pred, target, beta=0.0)", "polyloss",
         lambda m, p, t, w: m.smooth_l1(p, t, beta=0.0)),
    Case("log_cosh", "polyloss.log_cosh(pred, target, reduction='none')", "polyloss",
         lambda m, p, t, w: m.log_cosh(p, t, reduction="none")),
    Case("mape", "polyloss.mape(pred, target)", "polyloss",
         lambda m, p, t, w: m.mape(p, t), domain="positive", edges=_POSITIVE_EDGES),
    Case("msle", "polyloss.msle(pred, target)", "polyloss",
         lambda m, p, t, w: m.msle(p, t), domain="positive", edges=_POSITIVE_EDGES),
    Case("quantile", "polyloss.quantile(pred, target, q=0.9)", "polyloss",
         lambda m, p, t, w: m.quantile(p, t, q=0.9)),
]

# ---- torch ------------------------------------------------------------------------------

TORCH: list[Case] = [
    Case("mse", "MSELoss()", "torch", lambda m, p, t, w: m.MSELoss()(p, t)),
    Case("mse", "MSELoss(reduction='none')", "torch",
         lambda m, p, t, w: m.MSELoss(reduction="none")(p, t)),
    Case("mse", "mse_loss(input, target, weight=w)", "torch",
         lambda m, p, t, w: m.mse_loss(p, t, weight=w), weighted=True),
    Case("mae", "L1Loss(reduction='sum')", "torch",
         lambda m, p, t, w: m.L1Loss(reduction="sum")(p, t)),
    Case("mae", "l1_loss(input, target, weight=w)", "torch",
         lambda m, p, t, w: m.l1_loss(p, t, weight=w), weighted=True),
    Case("huber", "HuberLoss(delta=2.5)", "torch",
         lambda m, p, t, w: m.HuberLoss(delta=2.5)(p, t)),
    Case("huber", "huber_loss(input, target, weight=w)", "torch",
         lambda m, p, t, w: m.huber_loss(p, t, weight=w), weighted=True),
    Case("smooth_l1", "SmoothL1Loss(beta=0.5)", "torch",
         lambda m, p, t, w: m.SmoothL1Loss(beta=0.5)(p, t)),
    Case("smooth_l1", "smooth_l1_loss(input, target, reduction='none', beta=0.0)", "torch",
         lambda m, p, t, w: m.smooth_l1_loss(p, t, reduction="none", beta=0.0)),
]

# ---- keras (target first) ---------------------------------------------------------------

KERAS: list[Case] = [
    Case("mse", "MeanSquaredError()", "keras", lambda m, p, t, w: m.MeanSquaredError()(t, p)),
    Case("mse", "MeanSquaredError(dtype='float64')(y_true, y_pred, sample_weight=w)", "keras",
         lambda m, p, t, w: m.MeanSquaredError(dtype="float64")(t, p, sample_weight=w),
         weighted=True, per_sample_weight=True),
    Case("mse", "mean_squared_error(y_true, y_pred)", "keras",
         lambda m, p, t, w: m.mean_squared_error(t, p)),
    Case("mae", "MeanAbsoluteError(reduction='sum')", "keras",
         lambda m, p, t, w: m.MeanAbsoluteError(reduction="sum")(t, p)),
    Case("mae", "MeanAbsoluteError(reduction='mean_with_sample_weight')", "keras",
         lambda m, p, t, w: m.MeanAbsoluteError(reduction="mean_with_sample_weight")(
             t, p, sample_weight=w), weighted=True, per_sample_weight=True),
    Case("huber", "Huber(delta=2.5)", "keras", lambda m, p, t, w: m.Huber(delta=2.5)(t, p)),
    Case("huber", "huber(y_true, y_pred, delta=0.5)", "keras",
         lambda m, p, t, w: m.huber(t, p, delta=0.5)),
    Case("log_cosh", "LogCosh(reduction='none')", "keras",
         lambda m, p, t, w: m.LogCosh(reduction="none")(t, p), term_scale=1.0),
    Case("log_cosh", "log_cosh(y_true, y_pred)", "keras",
         lambda m, p, t, w: m.log_cosh(t, p), term_scale=1.0),
    Case("mape", "MeanAbsolutePercentageError()", "keras",
         lambda m, p, t, w: m.MeanAbsolutePercentageError()(t, p), domain="positive",
         edges=_POSITIVE_EDGES),
    Case("mape", "mean_absolute_percentage_error(y_true, y_pred)", "keras",
         lambda m, p, t, w: m.mean_absolute_percentage_error(t, p), domain="positive",
         edges=_POSITIVE_EDGES),
    Case("msle", "MeanSquaredLogarithmicError()", "keras",
         lambda m, p, t, w: m.MeanSquaredLogarithmicError()(t, p), domain="positive",
         term_scale=1.0, edges=_POSITIVE_EDGES),
    Case("msle", "mean_squared_logarithmic_error(y_true, y_pred)", "keras",
         lambda m, p, t, w: m.mean_squared_logarithmic_error(t, p), domain="positive",
         term_scale=1.0, edges=_POSITIVE_EDGES),
]

# ---- gluon ------------------------------------------------------------------------------

GLUON: list[Case] = [
    Case("mse", "L2Loss()", "gluon", lambda m, p, t, w: m.L2Loss()(p, t)),
    Case("mse", "L2Loss(weight=3.0)(pred, label, sample_weight=w)", "gluon",
         lambda m, p, t, w: m.L2Loss(weight=3.0)(p, t, w), weighted=True),
    Case("mae", "L1Loss(batch_axis=1)", "gluon", lambda m, p, t, w: m.L1Loss(batch_axis=1)(p, t)),
    Case("smooth_l1", "HuberLoss(rho=2.5)", "gluon", lambda m, p, t, w: m.HuberLoss(rho=2.5)(p, t)),
    Case("smooth_l1", "HuberLoss()(pred, label, sample_weight=w)", "gluon",
         lambda m, p, t, w: m.HuberLoss()(p, t, w), weighted=True, per_sample_weight=True),
]

# ---- optax ------------------------------------------------------------------------------

OPTAX: list[Case] = [
    Case("mse", "squared_error(predictions, targets)", "optax",
         lambda m, p, t, w: m.squared_error(p, t)),
    Case("mse", "l2_loss(predictions, targets)", "optax", lambda m, p, t, w: m.l2_loss(p, t)),
    Case("mse", "l2_loss(predictions)", "optax", lambda m, p, t, w: m.l2_loss(p - t)),
    Case("huber", "huber_loss(predictions, targets, delta=0.5)", "optax",
         lambda m, p, t, w: m.huber_loss(p, t, delta=0.5)),
    Case("log_cosh", "log_cosh(predictions, targets)", "optax",
         lambda m, p, t, w: m.log_cosh(p, t), term_scale=1.0),
]

ALL_CASES: list[Case] = CANONICAL + TORCH + KERAS + GLUON + OPTAX
CONVENTIONS = ("polyloss", "torch", "keras", "gluon", "optax")


def make_inputs(case: Case, edge: str | None, dtype: str, seed: int = 0) -> list[np.ndarray]:
    """``[pred, target, weight]`` as NumPy arrays of ``dtype`` (weight may be ``None``)."""
    rng = np.random.default_rng(seed)
    shape = (1, 5) if edge == "batch1" else (6, 4)
    if case.domain == "positive":
        target = rng.uniform(0.5, 3.0, size=shape)
        pred = target * rng.uniform(0.5, 1.5, size=shape)
    else:
        target = rng.normal(size=shape)
        pred = target + 2.0 * rng.normal(size=shape)
    if edge == "zero_residual":
        pred = target.copy()
    elif edge == "at_threshold":
        # residuals of exactly ±1 and ±0.5 (the default delta/beta and smaller ones);
        # dyadic values keep them exact in every dtype.
        target = np.round(target * 4) / 4
        steps = np.array([1.0, -1.0, 0.5, -0.5])
        pred = target + steps[np.arange(target.size) % 4].reshape(shape)
    elif edge == "tiny":
        target = 1e-20 * target
        pred = target + 1e-20 * rng.normal(size=shape)
    pred, target = pred.astype(dtype), target.astype(dtype)
    weight = None
    if case.weighted:
        # one weight per sample: (N,) everywhere, (N, 1) for Gluon (it broadcasts NumPy-style)
        wshape = shape
        if case.per_sample_weight:
            wshape = shape[:1] + ((1,) if case.convention == "gluon" else ())
        weight = rng.uniform(0.1, 2.0, size=wshape).astype(dtype)
    return [pred, target, weight]

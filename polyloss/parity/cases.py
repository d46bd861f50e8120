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
    # "real", "positive" (inputs > 0: MAPE, MSLE), or a classification domain (CLASS_DOMAINS)
    domain: str = "real"
    # Cases whose formula cancels (result much smaller than its terms): absolute tolerance
    # is a few ulps of this magnitude.
    term_scale: float = 0.0
    edges: tuple[str, ...] = ("zero_residual", "at_threshold", "tiny", "batch1")
    skip_native_edges: tuple[str, ...] = field(default_factory=tuple)
    # what the weight slot holds: "sample" weights, a per-"class" vector (C,), or a positive
    # "var"iance of the prediction's shape (Gaussian NLL)
    weight_kind: str = "sample"
    # A float32 relative tolerance for comparisons with the native where the *native* is
    # known to be less accurate than the policy (0: the policy applies)
    native_float32_tol: float = 0.0
    # the native returns float64 for float32 inputs (optax's multiclass hinge: jax.nn.one_hot
    # is float64 under jax_enable_x64) while the mirror keeps the input dtype: compare at the
    # input dtype's tolerance
    native_promotes: bool = False


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

# ---- classification ---------------------------------------------------------------------
# Domains: binary_logits / binary_probs (targets 0/1), class_logits / log_probs_labels
# (integer labels, class axis last; torch's class axis 1 is the last axis of 2-D inputs),
# class_probs (logits and probability targets), prob_pairs (two distributions), kl
# (log-probabilities and probabilities), counts (log rate and counts), rates (rate and
# counts), gaussian (the weight slot is the variance).

_BIN = ("extreme", "batch1")
# MXNet's float32 log_softmax kernel is off by up to 4.4e-6 absolute (reference/native-parity.md,
# summary #12: 5.8 digits on all-equal logits; float64 is exact), so the Gluon softmax family
# is compared in float32 at 1e-5 relative; float64 keeps 1e-12.
_MXNET_SOFTMAX_F32 = 1e-5
_CLS = ("extreme", "all_equal", "batch1")

CANONICAL += [
    Case("bce", "polyloss.binary_cross_entropy(pred, target)", "polyloss",
         lambda m, p, t, w: m.binary_cross_entropy(p, t), domain="binary_probs", edges=_BIN),
    Case("bce", "polyloss.binary_cross_entropy(pred, target, from_logits=True, pos_weight=w)",
         "polyloss", lambda m, p, t, w: m.binary_cross_entropy(p, t, from_logits=True, pos_weight=w),
         domain="binary_logits", weighted=True, weight_kind="class", edges=_BIN),
    Case("bce", "polyloss.binary_cross_entropy(pred, target, from_logits=True, label_smoothing=0.1, "
         "reduction='none')", "polyloss",
         lambda m, p, t, w: m.binary_cross_entropy(p, t, from_logits=True, label_smoothing=0.1,
                                                   reduction="none"), domain="binary_logits", edges=_BIN),
    Case("ce", "polyloss.cross_entropy(pred, target)", "polyloss",
         lambda m, p, t, w: m.cross_entropy(p, t), domain="class_logits", edges=_CLS),
    Case("ce", "polyloss.cross_entropy(pred, target, class_weight=w, ignore_index=-100, "
         "label_smoothing=0.1, normalizer='sum_of_weights')", "polyloss",
         lambda m, p, t, w: m.cross_entropy(p, t, class_weight=w, ignore_index=-100,
                                            label_smoothing=0.1, normalizer="sum_of_weights"),
         domain="class_logits", weighted=True, weight_kind="class", edges=_CLS + ("ignored",)),
    Case("ce", "polyloss.cross_entropy(pred, target_probs, reduction='none')", "polyloss",
         lambda m, p, t, w: m.cross_entropy(p, t, reduction="none"), domain="class_probs",
         edges=_CLS),
    Case("nll", "polyloss.nll(log_probs, target, ignore_index=-100)", "polyloss",
         lambda m, p, t, w: m.nll(p, t, ignore_index=-100), domain="log_probs_labels",
         edges=("batch1", "ignored")),
    Case("focal", "polyloss.focal(pred, target, alpha=0.25)", "polyloss",
         lambda m, p, t, w: m.focal(p, t, alpha=0.25), domain="binary_logits", edges=_BIN),
    Case("focal", "polyloss.focal(pred, target, kind='categorical', alpha=0.25)", "polyloss",
         lambda m, p, t, w: m.focal(p, t, kind="categorical", alpha=0.25), domain="class_logits",
         edges=_CLS),
    Case("poly1", "polyloss.poly1_cross_entropy(pred, target, epsilon=2.0)", "polyloss",
         lambda m, p, t, w: m.poly1_cross_entropy(p, t, epsilon=2.0), domain="class_logits",
         edges=_CLS),
    Case("kl", "polyloss.kl_div(log_q, p)", "polyloss", lambda m, p, t, w: m.kl_div(p, t),
         domain="kl", edges=("zero_target", "batch1")),
    Case("poisson", "polyloss.poisson_nll(log_rate, counts, full=True)", "polyloss",
         lambda m, p, t, w: m.poisson_nll(p, t, full=True), domain="counts",
         edges=("zero_counts", "batch1")),
    Case("gaussian_nll", "polyloss.gaussian_nll(pred, target, var)", "polyloss",
         lambda m, p, t, w: m.gaussian_nll(p, t, w), domain="gaussian", weighted=True,
         weight_kind="var", edges=("batch1",)),
]

TORCH += [
    Case("bce", "BCELoss()", "torch", lambda m, p, t, w: m.BCELoss()(p, t), domain="binary_probs",
         edges=_BIN),
    Case("bce", "BCEWithLogitsLoss(pos_weight=w)", "torch",
         lambda m, p, t, w: m.BCEWithLogitsLoss(pos_weight=w)(p, t), domain="binary_logits",
         weighted=True, weight_kind="class", edges=_BIN),
    Case("ce", "CrossEntropyLoss()", "torch", lambda m, p, t, w: m.CrossEntropyLoss()(p, t),
         domain="class_logits", edges=_CLS + ("ignored",)),
    Case("ce", "CrossEntropyLoss(weight=w, label_smoothing=0.1)", "torch",
         lambda m, p, t, w: m.CrossEntropyLoss(weight=w, label_smoothing=0.1)(p, t),
         domain="class_logits", weighted=True, weight_kind="class", edges=_CLS + ("ignored",)),
    Case("ce", "CrossEntropyLoss(reduction='none')(input, target_probs)", "torch",
         lambda m, p, t, w: m.CrossEntropyLoss(reduction="none")(p, t), domain="class_probs",
         edges=_CLS),
    Case("nll", "NLLLoss(reduction='sum')", "torch", lambda m, p, t, w: m.NLLLoss(reduction="sum")(p, t),
         domain="log_probs_labels", edges=("batch1", "ignored")),
    Case("kl", "KLDivLoss(reduction='batchmean')", "torch",
         lambda m, p, t, w: m.KLDivLoss(reduction="batchmean")(p, t), domain="kl",
         edges=("batch1",)),
    Case("poisson", "PoissonNLLLoss(full=True)", "torch",
         lambda m, p, t, w: m.PoissonNLLLoss(full=True)(p, t), domain="counts",
         edges=("zero_counts", "batch1")),
    Case("gaussian_nll", "GaussianNLLLoss()", "torch",
         lambda m, p, t, w: m.GaussianNLLLoss()(p, t, w), domain="gaussian", weighted=True,
         weight_kind="var", edges=("batch1",)),
]

KERAS += [
    Case("bce", "BinaryCrossentropy()", "keras", lambda m, p, t, w: m.BinaryCrossentropy()(t, p),
         domain="binary_probs", edges=_BIN),
    Case("bce", "BinaryCrossentropy(from_logits=True, label_smoothing=0.1)", "keras",
         lambda m, p, t, w: m.BinaryCrossentropy(from_logits=True, label_smoothing=0.1)(t, p),
         domain="binary_logits", edges=_BIN),
    Case("focal", "BinaryFocalCrossentropy(apply_class_balancing=True, from_logits=True)", "keras",
         lambda m, p, t, w: m.BinaryFocalCrossentropy(apply_class_balancing=True, from_logits=True)(t, p),
         domain="binary_logits", edges=_BIN),
    Case("ce", "CategoricalCrossentropy(from_logits=True)", "keras",
         lambda m, p, t, w: m.CategoricalCrossentropy(from_logits=True)(t, p), domain="class_probs",
         edges=_CLS),
    Case("ce", "SparseCategoricalCrossentropy(from_logits=True, ignore_class=-100)", "keras",
         lambda m, p, t, w: m.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-100)(t, p),
         domain="class_logits", edges=_CLS + ("ignored",)),
    Case("focal", "CategoricalFocalCrossentropy(dtype='float64')", "keras",
         lambda m, p, t, w: m.CategoricalFocalCrossentropy(dtype="float64")(t, p),
         domain="prob_pairs", edges=("batch1",)),
    Case("kl", "KLDivergence()", "keras", lambda m, p, t, w: m.KLDivergence()(t, p),
         domain="prob_pairs", edges=("batch1",)),
    Case("poisson", "Poisson()", "keras", lambda m, p, t, w: m.Poisson()(t, p), domain="rates",
         edges=("zero_counts", "batch1")),
]

GLUON += [
    Case("bce", "SigmoidBCELoss()", "gluon", lambda m, p, t, w: m.SigmoidBCELoss()(p, t),
         domain="binary_logits", edges=_BIN),
    Case("bce", "SigmoidBCELoss(from_sigmoid=True)", "gluon",
         lambda m, p, t, w: m.SigmoidBCELoss(from_sigmoid=True)(p, t), domain="binary_probs",
         edges=("batch1",)),
    Case("ce", "SoftmaxCELoss()", "gluon", lambda m, p, t, w: m.SoftmaxCELoss()(p, t),
         domain="class_logits", edges=("batch1", "all_equal"), native_float32_tol=_MXNET_SOFTMAX_F32),
    Case("kl", "KLDivLoss()", "gluon", lambda m, p, t, w: m.KLDivLoss()(p, t), domain="kl",
         edges=("batch1",)),
    Case("poisson", "PoissonNLLLoss()", "gluon", lambda m, p, t, w: m.PoissonNLLLoss()(p, t),
         domain="counts", edges=("zero_counts", "batch1")),
]

OPTAX += [
    Case("bce", "sigmoid_binary_cross_entropy(logits, labels)", "optax",
         lambda m, p, t, w: m.sigmoid_binary_cross_entropy(p, t), domain="binary_logits", edges=_BIN),
    Case("focal", "sigmoid_focal_loss(logits, labels, alpha=0.25)", "optax",
         lambda m, p, t, w: m.sigmoid_focal_loss(p, t, alpha=0.25), domain="binary_logits",
         edges=_BIN),
    Case("ce", "softmax_cross_entropy(logits, labels)", "optax",
         lambda m, p, t, w: m.softmax_cross_entropy(p, t), domain="class_probs", edges=_CLS),
    Case("ce", "softmax_cross_entropy_with_integer_labels(logits, labels)", "optax",
         lambda m, p, t, w: m.softmax_cross_entropy_with_integer_labels(p, t), domain="class_logits",
         edges=_CLS),
    Case("poly1", "poly_loss_cross_entropy(logits, labels)", "optax",
         lambda m, p, t, w: m.poly_loss_cross_entropy(p, t), domain="class_probs", edges=_CLS),
    Case("kl", "kl_divergence(log_predictions, targets)", "optax",
         lambda m, p, t, w: m.kl_divergence(p, t), domain="kl", edges=("zero_target", "batch1")),
]

# ---- margin losses ------------------------------------------------------------------------

_SIGNED = ("batch1",)
CANONICAL += [
    Case("hinge", "polyloss.hinge(pred, target)", "polyloss", lambda m, p, t, w: m.hinge(p, t),
         domain="signed", edges=_SIGNED),
    Case("hinge", "polyloss.squared_hinge(pred, target, margin=0.5)", "polyloss",
         lambda m, p, t, w: m.squared_hinge(p, t, margin=0.5), domain="signed", edges=_SIGNED),
    Case("soft_margin", "polyloss.soft_margin(pred, target)", "polyloss",
         lambda m, p, t, w: m.soft_margin(p, t), domain="signed", edges=_SIGNED),
    Case("multiclass_hinge", "polyloss.categorical_hinge(pred, target)", "polyloss",
         lambda m, p, t, w: m.categorical_hinge(p, t), domain="class_logits", edges=("batch1",)),
    Case("multiclass_hinge", "polyloss.multi_margin(pred, target, p=2)", "polyloss",
         lambda m, p, t, w: m.multi_margin(p, t, p=2), domain="class_logits", edges=("batch1",)),
]
TORCH += [
    Case("multiclass_hinge", "MultiMarginLoss()", "torch", lambda m, p, t, w: m.MultiMarginLoss()(p, t),
         domain="class_logits", edges=("batch1",)),
    Case("soft_margin", "SoftMarginLoss()", "torch", lambda m, p, t, w: m.SoftMarginLoss()(p, t),
         domain="signed", edges=_SIGNED),
    Case("hinge_embedding", "HingeEmbeddingLoss(margin=0.5)", "torch",
         lambda m, p, t, w: m.HingeEmbeddingLoss(margin=0.5)(p, t), domain="signed", edges=_SIGNED),
    Case("soft_margin", "MultiLabelSoftMarginLoss()", "torch",
         lambda m, p, t, w: m.MultiLabelSoftMarginLoss()(p, t), domain="binary_logits", edges=_BIN),
]
KERAS += [
    Case("hinge", "Hinge()", "keras", lambda m, p, t, w: m.Hinge()(t, p), domain="signed", edges=_SIGNED),
    Case("hinge", "SquaredHinge()", "keras", lambda m, p, t, w: m.SquaredHinge()(t, p), domain="signed",
         edges=_SIGNED),
]
GLUON += [
    Case("hinge", "HingeLoss()", "gluon", lambda m, p, t, w: m.HingeLoss()(p, t), domain="signed",
         edges=_SIGNED),
    Case("soft_margin", "LogisticLoss()", "gluon", lambda m, p, t, w: m.LogisticLoss()(p, t),
         domain="signed", edges=_SIGNED),
]
OPTAX += [
    Case("hinge", "hinge_loss(predictor_outputs, targets)", "optax",
         lambda m, p, t, w: m.hinge_loss(p, t), domain="signed", edges=_SIGNED),
    Case("multiclass_hinge", "multiclass_hinge_loss(scores, labels)", "optax",
         lambda m, p, t, w: m.multiclass_hinge_loss(p, t), domain="class_logits", edges=("batch1",),
         native_promotes=True),
]

# ---- embedding and overlap losses ---------------------------------------------------------
# The weight slot carries the third input: triplet negatives ("vectors") or ±1 pair labels.

_VEC = ("identical", "batch1")
# a cosine is a sum of products of unit-vector entries that can cancel: its rounding error is
# a few ulps of 1 (term_scale), not of the (possibly small) result
CANONICAL += [
    Case("cosine", "polyloss.cosine_similarity(pred, target, reduction='none')", "polyloss",
         lambda m, p, t, w: m.cosine_similarity(p, t, reduction="none"), domain="vectors", edges=_VEC,
         term_scale=1.0),
    Case("cosine", "polyloss.cosine_embedding(x1, x2, y, margin=0.2)", "polyloss",
         lambda m, p, t, w: m.cosine_embedding(p, t, w, margin=0.2), domain="vectors", weighted=True,
         weight_kind="pair_labels", edges=_VEC),
    Case("triplet", "polyloss.triplet_margin(anchor, positive, negative, swap=True)", "polyloss",
         lambda m, p, t, w: m.triplet_margin(p, t, w, swap=True), domain="vectors", weighted=True,
         weight_kind="vectors", edges=_VEC),
    Case("dice", "polyloss.dice(pred, target, smooth=1.0)", "polyloss",
         lambda m, p, t, w: m.dice(p, t, smooth=1.0), domain="masks", edges=("batch1",)),
    Case("dice", "polyloss.tversky(pred, target, alpha=0.3, beta=0.7, pooling='batch')", "polyloss",
         lambda m, p, t, w: m.tversky(p, t, alpha=0.3, beta=0.7, pooling="batch"), domain="masks",
         edges=("batch1",)),
]
TORCH += [
    Case("cosine", "CosineEmbeddingLoss(margin=0.2)", "torch",
         lambda m, p, t, w: m.CosineEmbeddingLoss(margin=0.2)(p, t, w), domain="vectors", weighted=True,
         weight_kind="pair_labels", edges=_VEC),
    Case("triplet", "TripletMarginLoss(margin=2.0, swap=True)", "torch",
         lambda m, p, t, w: m.TripletMarginLoss(margin=2.0, swap=True)(p, t, w), domain="vectors",
         weighted=True, weight_kind="vectors", edges=("batch1",)),
]
KERAS += [
    Case("cosine", "CosineSimilarity()", "keras", lambda m, p, t, w: m.CosineSimilarity()(t, p),
         domain="vectors", edges=_VEC, term_scale=1.0),
    Case("dice", "Dice()", "keras", lambda m, p, t, w: m.Dice()(t, p), domain="masks", edges=("batch1",)),
    Case("dice", "Tversky(alpha=0.3, beta=0.7, axis=-1)", "keras",
         lambda m, p, t, w: m.Tversky(alpha=0.3, beta=0.7, axis=-1)(t, p), domain="masks",
         edges=("batch1",)),
]
GLUON += [
    Case("triplet", "TripletLoss()", "gluon", lambda m, p, t, w: m.TripletLoss()(p, t, w),
         domain="vectors", weighted=True, weight_kind="vectors", edges=("batch1",)),
]
OPTAX += [
    Case("cosine", "cosine_similarity(predictions, targets)", "optax",
         lambda m, p, t, w: m.cosine_similarity(p, t), domain="vectors", edges=_VEC, term_scale=1.0),
    Case("triplet", "triplet_margin_loss(anchors, positives, negatives)", "optax",
         lambda m, p, t, w: m.triplet_margin_loss(p, t, w), domain="vectors", weighted=True,
         weight_kind="vectors", edges=("batch1",)),
    Case("dice", "dice_loss(predictions, targets, axis=(0,))", "optax",
         lambda m, p, t, w: m.dice_loss(p, t, axis=(0,)), domain="binary_logits", edges=("batch1",)),
]

ALL_CASES: list[Case] = CANONICAL + TORCH + KERAS + GLUON + OPTAX
CONVENTIONS = ("polyloss", "torch", "keras", "gluon", "optax")


CLASS_DOMAINS = ("binary_logits", "binary_probs", "class_logits", "log_probs_labels", "class_probs",
                 "prob_pairs", "kl", "counts", "rates", "gaussian", "signed", "vectors", "masks")


def _log_softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def _classification_inputs(case: Case, edge: str | None, dtype: str,
                           rng: np.random.Generator) -> list:
    n, c = (1, 5) if edge == "batch1" else (6, 5)
    domain = case.domain
    labels = rng.integers(0, c, size=n)
    logits = 2.0 * rng.normal(size=(n, c))
    if edge == "extreme":
        logits = np.resize(np.array([100.0, -100.0, 1e4, -1e4, 0.5]), (n, c)) * np.where(
            rng.random((n, c)) < 0.5, 1.0, -1.0)
    elif edge == "all_equal":
        logits = np.full((n, c), 3.7)
    if domain in ("binary_logits", "binary_probs"):
        target = (rng.random((n, c)) < 0.5).astype(np.float64)
        pred = logits
        if domain == "binary_probs":
            pred = rng.uniform(0.02, 0.98, size=(n, c))
            if edge == "extreme":  # probabilities exactly 0 and 1, right and wrong
                pred = np.resize(np.array([0.0, 1.0, 1.0, 0.0, 0.3]), (n, c))
                target = np.resize(np.array([0.0, 1.0, 0.0, 1.0, 1.0]), (n, c))
    elif domain in ("class_logits", "log_probs_labels"):
        pred = logits if domain == "class_logits" else _log_softmax(logits)
        target = labels.astype(np.int64)
        if edge == "ignored":
            target[::3] = -100
    elif domain == "class_probs":
        pred, target = logits, np.exp(_log_softmax(rng.normal(size=(n, c))))
    elif domain == "prob_pairs":
        pred = np.exp(_log_softmax(rng.normal(size=(n, c))))
        target = np.exp(_log_softmax(rng.normal(size=(n, c))))
    elif domain == "kl":
        pred = _log_softmax(rng.normal(size=(n, c)))
        target = np.exp(_log_softmax(rng.normal(size=(n, c))))
        if edge == "zero_target":
            target[:, 0] = 0.0
            target /= target.sum(axis=-1, keepdims=True)
    elif domain in ("counts", "rates"):
        target = rng.poisson(2.0, size=(n, c)).astype(np.float64)
        if edge == "zero_counts":
            target[:, :2] = 0.0
        pred = rng.normal(size=(n, c)) if domain == "counts" else rng.uniform(0.1, 3.0, size=(n, c))
    elif domain == "vectors":  # embeddings: rows are vectors
        pred, target = rng.normal(size=(n, c)), rng.normal(size=(n, c))
        if edge == "identical":
            target = pred.copy()
    elif domain == "masks":  # segmentation: probabilities and 0/1 masks
        pred = rng.uniform(0.02, 0.98, size=(n, c))
        target = (rng.random((n, c)) < 0.5).astype(np.float64)
    elif domain == "signed":  # margin losses: scores and ±1 labels
        pred = rng.normal(size=(n, c))
        target = np.where(rng.random((n, c)) < 0.5, -1.0, 1.0)
    else:  # gaussian
        target = rng.normal(size=(n, c))
        pred = target + rng.normal(size=(n, c))
    pred = pred.astype(dtype)
    if target.dtype != np.int64:
        target = target.astype(dtype)
    weight = None
    if case.weighted:
        if case.weight_kind == "class":
            weight = rng.uniform(0.2, 2.0, size=(c,)).astype(dtype)
        elif case.weight_kind == "var":
            weight = rng.uniform(0.1, 2.0, size=(n, c)).astype(dtype)
        elif case.weight_kind == "vectors":  # a third set of vectors (triplet negatives)
            weight = rng.normal(size=(n, c)).astype(dtype)
        elif case.weight_kind == "pair_labels":  # ±1 per vector pair
            weight = np.where(rng.random(n) < 0.5, -1.0, 1.0).astype(dtype)
        else:
            weight = rng.uniform(0.1, 2.0, size=(n,)).astype(dtype)
    return [pred, target, weight]


def make_inputs(case: Case, edge: str | None, dtype: str, seed: int = 0) -> list[np.ndarray]:
    """``[pred, target, weight]`` as NumPy arrays of ``dtype`` (weight may be ``None``;
    class labels stay int64)."""
    rng = np.random.default_rng(seed)
    if case.domain in CLASS_DOMAINS:
        return _classification_inputs(case, edge, dtype, rng)
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

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

from polyloss.parity.backends import numpy_dtype


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
    # the dtypes this case runs in (None: every dtype the backends have), and why
    dtypes: tuple[str, ...] | None = None
    dtypes_note: str = ""
    # the documented deliberate differences (ids in polyloss.parity.differences) this case
    # meets: they say where the native cannot run a dtype, computes in another precision or
    # is less accurate than the tolerance policy, with the measured size
    differences: tuple[str, ...] = ()


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
         term_scale=1.0, edges=_POSITIVE_EDGES, differences=("keras-msle-float32-result",)),
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
         edges=_BIN, differences=("torch-bce-float16-clamp",)),
    Case("bce", "BCEWithLogitsLoss(pos_weight=w)", "torch",
         lambda m, p, t, w: m.BCEWithLogitsLoss(pos_weight=w)(p, t), domain="binary_logits",
         weighted=True, weight_kind="class", edges=_BIN),
    Case("ce", "CrossEntropyLoss()", "torch", lambda m, p, t, w: m.CrossEntropyLoss()(p, t),
         domain="class_logits", edges=_CLS + ("ignored",)),
    Case("ce", "CrossEntropyLoss(weight=w, label_smoothing=0.1)", "torch",
         lambda m, p, t, w: m.CrossEntropyLoss(weight=w, label_smoothing=0.1)(p, t),
         domain="class_logits", weighted=True, weight_kind="class", edges=_CLS + ("ignored",),
         differences=("torch-smoothing-overflow",)),
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
         domain="class_logits", edges=("batch1", "all_equal"),
         differences=("gluon-log-softmax-float32",)),
    Case("kl", "KLDivLoss()", "gluon", lambda m, p, t, w: m.KLDivLoss()(p, t), domain="kl",
         edges=("batch1",)),
    Case("poisson", "PoissonNLLLoss()", "gluon", lambda m, p, t, w: m.PoissonNLLLoss()(p, t),
         domain="counts", edges=("zero_counts", "batch1"), differences=("gluon-poisson-float16",)),
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
         edges=_CLS, differences=("optax-integer-ce-bfloat16",)),
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
         domain="class_logits", edges=("batch1",), differences=("torch-half-kernels",)),
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
    # a hinge is a difference of scores of size ~1: its rounding error is absolute (optax rounds
    # part of it in the scores' dtype, so a 0 comes out as 3.7e-4 in float16)
    Case("multiclass_hinge", "multiclass_hinge_loss(scores, labels)", "optax",
         lambda m, p, t, w: m.multiclass_hinge_loss(p, t), domain="class_logits", edges=("batch1",),
         term_scale=1.0, differences=("optax-multiclass-hinge-float64",)),
]

# multi-label margins: "label_lists" are torch's class-index lists padded with -1 (with a
# duplicate, a row listing every class and one listing none); multi-hot targets use binary_logits
CANONICAL += [
    Case("multilabel", "polyloss.multilabel_margin(pred, target, target_format='indices')", "polyloss",
         lambda m, p, t, w: m.multilabel_margin(p, t, target_format="indices"), domain="label_lists",
         edges=("batch1",)),
    Case("multilabel", "polyloss.multilabel_margin(pred, target, margin=0.5, reduction='none')",
         "polyloss", lambda m, p, t, w: m.multilabel_margin(p, t, margin=0.5, reduction="none"),
         domain="binary_logits", edges=_BIN),
    Case("multilabel", "polyloss.multilabel_soft_margin(pred, target, class_weight=w)", "polyloss",
         lambda m, p, t, w: m.multilabel_soft_margin(p, t, class_weight=w), domain="binary_logits",
         weighted=True, weight_kind="class", edges=_BIN),
]
TORCH += [
    Case("multilabel", "MultiLabelMarginLoss()", "torch", lambda m, p, t, w: m.MultiLabelMarginLoss()(p, t),
         domain="label_lists", edges=("batch1",), differences=("torch-half-kernels",)),
]

# Lovász losses: "seg_binary" is (N, 1, 4, 4) logits with 0/1 masks, "seg_classes" (N, 3, 4, 4)
# logits and "seg_probs" probabilities with (N, 4, 4) labels; edge "ties" makes many errors
# exactly equal (dyadic logits / probabilities in eighths), "ignored" labels some pixels 255 (and
# one sample entirely), "absent" leaves a class out of the batch. The gradient at tied errors
# depends on their order, so ties are only tested where the errors are exact in every dtype
# (hinge errors 1 - x·s, given probabilities): after a softmax or sigmoid, values tied in float64
# come out in float32 (and in MXNet's float64 exp) as near-ties in either order.
_SEG = ("ties", "ignored", "batch1")
CANONICAL += [
    Case("lovasz", "polyloss.lovasz_hinge(pred, target, ignore_index=255)", "polyloss",
         lambda m, p, t, w: m.lovasz_hinge(p, t, ignore_index=255), domain="seg_binary", edges=_SEG),
    Case("lovasz", "polyloss.lovasz_hinge(pred, target, pooling='batch', ignore_index=255)", "polyloss",
         lambda m, p, t, w: m.lovasz_hinge(p, t, pooling="batch", ignore_index=255), domain="seg_binary",
         edges=_SEG),
    Case("lovasz", "polyloss.lovasz_softmax(pred, target, activation='softmax', ignore_index=255, "
         "sample_weight=w)", "polyloss",
         lambda m, p, t, w: m.lovasz_softmax(p, t, activation="softmax", ignore_index=255, sample_weight=w),
         domain="seg_classes", weighted=True, edges=("ignored", "batch1", "absent")),
    Case("lovasz", "polyloss.lovasz_softmax(probs, target, ignore_index=255)", "polyloss",
         lambda m, p, t, w: m.lovasz_softmax(p, t, ignore_index=255), domain="seg_probs",
         edges=_SEG + ("absent",)),
    Case("lovasz", "polyloss.lovasz_softmax(pred, target, activation='softmax', classes='all', "
         "pooling='batch', ignore_index=255)", "polyloss",
         lambda m, p, t, w: m.lovasz_softmax(p, t, activation="softmax", classes="all", pooling="batch",
                                             ignore_index=255), domain="seg_classes",
         edges=("ignored", "batch1", "absent")),
    Case("lovasz", "polyloss.lovasz_softmax(pred, target, activation='sigmoid', classes=[0, 2], "
         "reduction='none')", "polyloss",
         lambda m, p, t, w: m.lovasz_softmax(p, t, activation="sigmoid", classes=[0, 2], reduction="none"),
         domain="seg_classes", edges=("batch1",)),
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
         domain="vectors", weighted=True, weight_kind="vectors", edges=("batch1",),
         differences=("gluon-triplet-float16",)),
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

# ---- metric learning: Circle, generalized cross-entropy, SDML ------------------------------
# "embeddings": L2-normalised rows with integer labels from 3 classes (Circle); "probs_labels":
# probabilities with integer labels (GCE); SDML takes two batches of "vectors". SDML is a KL
# divergence, Σt·log t - Σt·log p, which cancels (the loss can be far smaller than its terms):
# with MXNet's float32 log_softmax off by up to 4.4e-6 absolute per entry and the labels t
# summing to 1, its float32 error is absolute (term_scale 1 with the 1e-5 of the softmax family).

_EMB = ("one_class", "identical", "batch1")
_GCE = ("confident", "all_equal", "batch1")
KERAS += [
    Case("circle", "Circle()", "keras", lambda m, p, t, w: m.Circle()(t, p), domain="embeddings",
         edges=_EMB),
    Case("circle", "Circle(gamma=16.0, margin=0.25, reduction='sum')(y_true, y_pred, sample_weight=w)",
         "keras", lambda m, p, t, w: m.Circle(gamma=16.0, margin=0.25, reduction="sum")(
             t, p, sample_weight=w), domain="embeddings", weighted=True, per_sample_weight=True,
         edges=_EMB),
    Case("circle", "circle(y_true, y_pred, remove_diagonal=False)", "keras",
         lambda m, p, t, w: m.circle(t, p, remove_diagonal=False), domain="embeddings", edges=_EMB),
    Case("gce", "CategoricalGeneralizedCrossEntropy()", "keras",
         lambda m, p, t, w: m.CategoricalGeneralizedCrossEntropy()(t, p), domain="probs_labels",
         edges=_GCE),
    Case("gce", "categorical_generalized_cross_entropy(y_true, y_pred, q=0.7)", "keras",
         lambda m, p, t, w: m.categorical_generalized_cross_entropy(t, p, q=0.7), domain="probs_labels",
         edges=_GCE),
]
GLUON += [
    Case("sdml", "SDMLLoss()", "gluon", lambda m, p, t, w: m.SDMLLoss()(p, t), domain="vectors",
         edges=("identical", "batch1"), term_scale=1.0,
         differences=("gluon-log-softmax-float32", "gluon-sdml-float32-only")),
    Case("sdml", "SDMLLoss(smoothing_parameter=0.1)", "gluon",
         lambda m, p, t, w: m.SDMLLoss(smoothing_parameter=0.1)(p, t), domain="vectors",
         edges=("identical",), term_scale=1.0,
         differences=("gluon-log-softmax-float32", "gluon-sdml-float32-only")),
]

# ---- sparsemax, Fenchel–Young, ranking and contrastive -------------------------------------
# The weight slot carries 0/1 pair labels (contrastive), per-anchor weights (ntxent) or a
# boolean item mask (ranking's `where`).


def _fy_logsumexp(v: Any) -> Any:
    """A max function for make_fenchel_young_loss that works on any backend's 1-D array (and
    on the JAX tracers of optax's jnp.vectorize): ``log Σ exp(v)``, shifted by the max."""
    from polyloss.backends import backend_of

    xp = backend_of(v).xp
    m = xp.max(v)
    return xp.log(xp.sum(xp.exp(v - m))) + m


# NT-Xent's log-softmax terms are differences of logits cos/τ shifted by their row maximum,
# of magnitude up to 2/τ, which cancel to ~0 when a row has no negative (one_class): its
# rounding error is a few ulps of 2/τ (term_scale), not of the (possibly ~0) result
CANONICAL += [
    Case("ntxent", "polyloss.ntxent(embeddings, labels)", "polyloss",
         lambda m, p, t, w: m.ntxent(p, t), domain="embeddings", edges=("one_class", "identical", "batch1"),
         term_scale=2 / 0.07),
    Case("ntxent", "polyloss.ntxent(embeddings, labels, temperature=0.5, reduction='none')", "polyloss",
         lambda m, p, t, w: m.ntxent(p, t, temperature=0.5, reduction="none"), domain="embeddings",
         edges=("one_class", "identical"), term_scale=2 / 0.5),
    Case("ntxent", "polyloss.ntxent(embeddings, labels, sample_weight=w, normalizer='sum_of_weights')",
         "polyloss", lambda m, p, t, w: m.ntxent(p, t, sample_weight=w, normalizer="sum_of_weights"),
         domain="embeddings", weighted=True, edges=("identical",), term_scale=2 / 0.07),
    Case("contrastive", "polyloss.contrastive(x1, x2, y)", "polyloss",
         lambda m, p, t, w: m.contrastive(p, t, w), domain="vectors", weighted=True,
         weight_kind="binary_pair_labels", edges=_VEC),
    Case("contrastive", "polyloss.contrastive(x1, x2, y, margin=3.0, eps=1e-6, reduction='none')",
         "polyloss", lambda m, p, t, w: m.contrastive(p, t, w, margin=3.0, eps=1e-6, reduction="none"),
         domain="vectors", weighted=True, weight_kind="binary_pair_labels", edges=_VEC),
]
OPTAX += [
    Case("sparsemax", "sparsemax_loss(logits, labels)", "optax",
         lambda m, p, t, w: m.sparsemax_loss(p, t), domain="binary_logits", edges=_BIN),
    Case("sparsemax", "multiclass_sparsemax_loss(scores, labels)", "optax",
         lambda m, p, t, w: m.multiclass_sparsemax_loss(p, t), domain="class_logits", edges=_CLS,
         differences=("optax-sparsemax-x64",)),
    Case("sparsemax", "make_fenchel_young_loss(max_fun=logsumexp)(scores, targets)", "optax",
         lambda m, p, t, w: m.make_fenchel_young_loss(_fy_logsumexp)(p, t), domain="class_probs",
         edges=("all_equal", "batch1")),
    Case("ranking", "ranking_softmax_loss(logits, labels)", "optax",
         lambda m, p, t, w: m.ranking_softmax_loss(p, t), domain="ranking", edges=_CLS,
         differences=("optax-ranking-float16-overflow",)),
    Case("ranking", "ranking_softmax_loss(logits, labels, where=mask, reduce_fn=None)", "optax",
         lambda m, p, t, w: m.ranking_softmax_loss(p, t, where=w, reduce_fn=None), domain="ranking",
         weighted=True, weight_kind="item_mask", edges=("no_valid", "all_equal", "batch1")),
    Case("ranking", "ranking_softmax_loss(logits, labels, where=mask)", "optax",
         lambda m, p, t, w: m.ranking_softmax_loss(p, t, where=w), domain="ranking",
         weighted=True, weight_kind="item_mask", edges=("no_valid",)),
    Case("ntxent", "ntxent(embeddings, labels)", "optax", lambda m, p, t, w: m.ntxent(p, t),
         domain="embeddings", edges=("one_class", "identical", "batch1"), term_scale=2 / 0.07,
         differences=("optax-ntxent-float16-overflow",)),
    Case("ntxent", "ntxent(embeddings, labels, temperature=0.5)", "optax",
         lambda m, p, t, w: m.ntxent(p, t, temperature=0.5), domain="embeddings", edges=("identical",),
         term_scale=2 / 0.5),
]

# ---- sequence: CTC -----------------------------------------------------------------------------
# The "ctc_*" domains give each convention its own spelling of the same batch (3 sequences, 8
# frames, 5 classes, up to 3 labels, one with a repeat): the slots after pred and target carry
# lengths or padding masks, as the call needs. Edges: "infeasible" gives one sequence a label
# run its frames cannot fit ("aaa" in 4 frames), "empty" one with no labels.
_CTC = ("batch1", "empty")
CANONICAL += [
    Case("ctc", "polyloss.ctc(logits, labels, input_lengths)", "polyloss",
         lambda m, p, t, w: m.ctc(p, t, w), domain="ctc", edges=_CTC),
    Case("ctc", "polyloss.ctc(log_probs, labels, input_lengths, label_lengths, layout='TNC', "
         "from_logits=False, zero_infinity=True, normalize_by_length=True)", "polyloss",
         lambda m, p, t, w, x: m.ctc(p, t, w, x, layout="TNC", from_logits=False, zero_infinity=True,
                                     normalize_by_length=True), domain="ctc_torch",
         edges=_CTC + ("infeasible",)),
]
TORCH += [
    Case("ctc", "CTCLoss()", "torch", lambda m, p, t, w, x: m.CTCLoss()(p, t, w, x), domain="ctc_torch",
         edges=_CTC, differences=("torch-half-kernels",)),
    Case("ctc", "CTCLoss(blank=2, reduction='sum', zero_infinity=True)", "torch",
         lambda m, p, t, w, x: m.CTCLoss(blank=2, reduction="sum", zero_infinity=True)(p, t, w, x),
         domain="ctc_torch_blank2", edges=_CTC + ("infeasible",), differences=("torch-half-kernels",)),
    Case("ctc", "ctc_loss(log_probs, targets, input_lengths, target_lengths, reduction='none')", "torch",
         lambda m, p, t, w, x: m.ctc_loss(p, t, w, x, reduction="none"), domain="ctc_torch", edges=_CTC,
         differences=("torch-half-kernels",)),
]
KERAS += [
    Case("ctc", "CTC()", "keras", lambda m, p, t, w: m.CTC()(t, p), domain="ctc_keras", edges=_CTC),
    Case("ctc", "ctc(y_true, y_pred)", "keras", lambda m, p, t, w: m.ctc(t, p), domain="ctc_keras",
         edges=_CTC, differences=("keras-ctc-float32",)),
]
GLUON += [
    Case("ctc", "CTCLoss()(pred, label, pred_lengths)", "gluon", lambda m, p, t, w: m.CTCLoss()(p, t, w),
         domain="ctc_gluon", edges=_CTC, differences=("gluon-ctc-float32-only",)),
    Case("ctc", "CTCLoss(layout='TNC', label_layout='TN')(pred, label)", "gluon",
         lambda m, p, t, w: m.CTCLoss(layout="TNC", label_layout="TN")(p, t), domain="ctc_gluon_tnc",
         edges=_CTC, differences=("gluon-ctc-float32-only",)),
]
OPTAX += [
    Case("ctc", "ctc_loss(logits, logit_paddings, labels, label_paddings)", "optax",
         lambda m, p, t, w, x: m.ctc_loss(p, w, t, x), domain="ctc_optax", edges=_CTC,
         differences=("optax-ctc-float64",)),
    Case("ctc", "ctc_loss(..., blank_id=4, log_epsilon=-1e4)", "optax",
         lambda m, p, t, w, x: m.ctc_loss(p, w, t, x, blank_id=4, log_epsilon=-1e4),
         domain="ctc_optax_blank4", edges=_CTC, differences=("optax-ctc-float64",)),
    Case("ctc", "ctc_loss(..., blank_id=4, log_epsilon=-1e4) [infeasible]", "optax",
         lambda m, p, t, w, x: m.ctc_loss(p, w, t, x, blank_id=4, log_epsilon=-1e4),
         domain="ctc_optax_blank4", edges=("infeasible",), differences=("optax-ctc-float64",),
         dtypes=("float64",),
         dtypes_note="an infeasible sequence's value is log_epsilon-sized (1e4): float32 and lower "
                     "hold it to 1e-3 or worse, in polyloss and optax alike, so its gradient (exp of "
                     "differences of such values) is only meaningful in float64"),
    Case("ctc", "ctc_loss_with_forward_probs(...)[1]", "optax",
         lambda m, p, t, w, x: m.ctc_loss_with_forward_probs(p, w, t, x)[1], domain="ctc_optax",
         edges=_CTC, differences=("optax-ctc-float64",), term_scale=1e5,
         dtypes=("float32", "float64", "bfloat16"),
         dtypes_note="the forward log-probabilities reach log_epsilon = -1e5, beyond float16's range "
                     "(65504): in float16 they are -inf (optax returns float64)"),
]
CTC_DOMAINS = ("ctc", "ctc_torch", "ctc_torch_blank2", "ctc_keras", "ctc_gluon", "ctc_gluon_tnc",
               "ctc_optax", "ctc_optax_blank4")


def _ctc_inputs(case: Case, edge: str | None, dtype: str, rng: np.random.Generator) -> list:
    n, t_max, c, s = (1, 8, 5, 3) if edge == "batch1" else (3, 8, 5, 3)
    domain = case.domain
    blank = {"ctc_torch_blank2": 2, "ctc_gluon": c - 1, "ctc_gluon_tnc": c - 1,
             "ctc_optax_blank4": 4}.get(domain, 0)
    classes = np.array([k for k in range(c) if k != blank])
    labels = classes[rng.integers(0, c - 1, size=(n, s))]
    labels[0, 1] = labels[0, 0]  # a repeat: needs a blank in between
    label_lengths = np.full(n, s)
    label_lengths[n - 1] = min(2, s)
    input_lengths = np.full(n, t_max)
    input_lengths[n - 1] = t_max - 2
    if edge == "empty":
        label_lengths[n - 1] = 0
    if edge == "infeasible":  # "aaa" needs 5 frames: give it 4
        labels[n - 1] = labels[n - 1, 0]
        label_lengths[n - 1], input_lengths[n - 1] = s, 4
    logits = 2.0 * rng.normal(size=(n, t_max, c))
    if domain == "ctc_keras":  # every sequence uses all frames; 0 pads (and is the blank)
        padded = np.where(np.arange(s) < label_lengths[:, None], labels, 0)
        return [logits.astype(dtype), padded.astype(np.int64), None]
    if domain in ("ctc", "ctc_gluon", "ctc_gluon_tnc"):  # -1 pads
        padded = np.where(np.arange(s) < label_lengths[:, None], labels, -1)
        if domain == "ctc":
            return [logits.astype(dtype), padded.astype(np.int64), input_lengths.astype(np.int64)]
        if domain == "ctc_gluon":  # MXNet wants labels and lengths in the data's dtype
            return [logits.astype(dtype), padded.astype(dtype), input_lengths.astype(dtype)]
        return [np.transpose(logits, (1, 0, 2)).astype(dtype), padded.T.astype(dtype), None]
    if domain in ("ctc_optax", "ctc_optax_blank4"):
        frames = (np.arange(t_max) >= input_lengths[:, None]).astype(dtype)
        label_pad = (np.arange(s) >= label_lengths[:, None]).astype(dtype)
        return [logits.astype(dtype), labels.astype(np.int64), frames, label_pad]
    # torch: time-major log-probabilities, padded targets and both lengths
    log_probs = np.transpose(_log_softmax(logits), (1, 0, 2)).astype(dtype)
    return [log_probs, labels.astype(np.int64), input_lengths.astype(np.int64),
            label_lengths.astype(np.int64)]


ALL_CASES: list[Case] = CANONICAL + TORCH + KERAS + GLUON + OPTAX
CONVENTIONS = ("polyloss", "torch", "keras", "gluon", "optax")


CLASS_DOMAINS = ("binary_logits", "binary_probs", "class_logits", "log_probs_labels", "class_probs",
                 "prob_pairs", "kl", "counts", "rates", "gaussian", "signed", "vectors", "masks",
                 "label_lists", "seg_binary", "seg_classes", "seg_probs",
                 "embeddings", "probs_labels", "ranking")


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
    elif domain == "embeddings":  # metric learning: unit vectors and integer labels (3 classes)
        pred = rng.normal(size=(n, c))
        target = rng.integers(0, 3, size=n).astype(np.int64)
        if edge == "one_class":  # no negatives: every loss is 0 (Keras masks them all)
            target[:] = 1
        elif edge == "identical" and n > 2:  # exact unit vectors: cosine distances exactly 0
            pred[:3] = np.eye(c)[0]
            target[2], target[1] = target[0], (target[0] + 1) % 3
        pred = pred / np.sqrt((pred * pred).sum(axis=-1, keepdims=True))
    elif domain == "probs_labels":  # probabilities and integer labels
        pred = np.exp(_log_softmax(logits))
        target = labels.astype(np.int64)
        if edge == "confident":  # one-hot predictions, right in even rows, wrong in odd ones
            hit = labels.copy()
            hit[1::2] = (labels[1::2] + 1) % c
            pred = np.eye(c)[hit]
    elif domain == "label_lists":  # torch's multi-label index lists, padded with -1
        pred = logits
        target = np.full((n, c), -1, dtype=np.int64)
        for i in range(n):
            k = (0, c, 2, 1, 3, 2)[i % 6]  # none, every class, ...
            target[i, :k] = rng.permutation(c)[:k]
            if k < c - 1:
                target[i, k + 1:] = rng.integers(0, c, size=c - k - 1)  # after the -1: not read
        if n > 3:
            target[3, :3] = (target[3, 0], target[3, 0], -1)  # a duplicate
    elif domain in ("seg_binary", "seg_classes", "seg_probs"):  # segmentation, (N, C, 4, 4)
        k = 1 if domain == "seg_binary" else 3
        pred = 2.0 * rng.normal(size=(n, k, 4, 4))
        if edge == "ties":
            pred = np.round(pred * 2) / 2
        if domain == "seg_probs":  # softmax probabilities, or eighths summing to 1 (ties)
            pred = np.exp(pred - np.log(np.exp(pred).sum(axis=1, keepdims=True)))
            if edge == "ties":
                pred = np.moveaxis(rng.multinomial(8, [1 / 3] * 3, size=(n, 4, 4)), -1, 1) / 8.0
        if domain == "seg_binary":
            target = (rng.random((n, 1, 4, 4)) < 0.4).astype(np.float64)
        else:
            target = rng.integers(0, k, size=(n, 4, 4)).astype(np.int64)
            if edge == "absent":
                target[target == 1] = 2
        if edge == "ignored":
            target[rng.random(target.shape) < 0.25] = 255
            target[-1] = 255
    elif domain == "ranking":  # lists of item scores and graded relevance labels 0..3
        pred = logits
        target = rng.integers(0, 4, size=(n, c)).astype(np.float64)
        if edge == "all_equal":
            target[:] = 1.0
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
        elif case.weight_kind == "binary_pair_labels":  # 0/1 per vector pair (1 = similar)
            weight = (rng.random(n) < 0.5).astype(dtype)
        elif case.weight_kind == "item_mask":  # a boolean `where` over list items
            weight = rng.random((n, c)) < 0.7
            weight[:, 0] = True
            if edge == "no_valid":  # a list with no valid item (0, left out of the mean)
                weight[0] = False
        else:
            weight = rng.uniform(0.1, 2.0, size=(n,)).astype(dtype)
    return [pred, target, weight]


def make_inputs(case: Case, edge: str | None, dtype: str, seed: int = 0) -> list[np.ndarray]:
    """``[pred, target, weight]`` as NumPy arrays of ``dtype`` (weight may be ``None``;
    class labels stay int64): made in float64, then cast, so every dtype and every backend
    sees the same values rounded once."""
    rng = np.random.default_rng(seed)
    dtype = numpy_dtype(dtype)  # bfloat16 is ml_dtypes' (NumPy has none)
    if case.domain in CTC_DOMAINS:
        return _ctc_inputs(case, edge, dtype, rng)
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


# ---- linear cross-entropy -------------------------------------------------------------------
# The machinery passes (pred, target, weight); a linear cross-entropy takes (hidden, weight,
# target). Each case builds the layer from ``pred`` itself (6 x 5): hidden = pred, weight =
# 0.1 * pred[:5, :] (5 classes x 5 features; the scale keeps the quadratic logits moderate),
# bias = pred[5, :] (every axis indexed, for array-api-strict), so the logits are
# pred @ (0.1 * pred[:5, :]).T + pred[5, :] and the gradient w.r.t. pred runs through all three.
# Both sides (the oracle or torch's native F.linear_cross_entropy) compute exactly that
# spelling. Row and class blocks smaller than the problem exercise both blocked passes.

_LIN = ("all_equal", "ignored")
# canonical cases against the float64 oracle: float32 and float64 only
_LIN_DTYPES = {
    "dtypes": ("float32", "float64"),
    "dtypes_note": "the layer is built from pred by the framework itself (0.1 * pred[:5, :], and "
                   "its autograd sums three gradient paths into pred): in float16/bfloat16 those "
                   "steps round outside polyloss, 1.2-1.7x the rounded tolerance against the "
                   "float64 oracle; the torch cases, where both sides round alike, run every dtype",
}
_H, _B = "pred, 0.1 * pred[:5, :], target", "bias=pred[5, :]"
_TH, _TB = "input, 0.1 * input[:5, :], target", "linear_bias=input[5, :]"


def _linear(fn: Callable[..., Any], p: Any, t: Any, bias: str | None = None, **kw: Any) -> Any:
    """``fn(pred, 0.1 * pred[:5, :], target, <bias>=pred[5, :], **kw)``."""
    if bias is not None:
        kw[bias] = p[5, :]
    return fn(p, 0.1 * p[:5, :], t, **kw)


LINEAR: list[Case] = [
    Case("linear_ce", f"polyloss.linear_cross_entropy({_H}, {_B})", "polyloss",
         lambda m, p, t, w: _linear(m.linear_cross_entropy, p, t, "bias"),
         domain="class_logits", edges=("all_equal",), **_LIN_DTYPES),
    Case("linear_ce", f"polyloss.linear_cross_entropy({_H}, {_B}, ignore_index=-100, "
         "label_smoothing=0.1, row_chunk=2)", "polyloss",
         lambda m, p, t, w: _linear(m.linear_cross_entropy, p, t, "bias", ignore_index=-100,
                                    label_smoothing=0.1, row_chunk=2),
         domain="class_logits", edges=_LIN, **_LIN_DTYPES),
    Case("linear_ce", f"polyloss.linear_cross_entropy({_H}, class_weight=w, ignore_index=-100, "
         "normalizer='sum_of_weights', class_chunk=2, reduction='none')", "polyloss",
         lambda m, p, t, w: _linear(m.linear_cross_entropy, p, t, class_weight=w, ignore_index=-100,
                                    normalizer="sum_of_weights", class_chunk=2, reduction="none"),
         weighted=True, weight_kind="class", domain="class_logits", edges=_LIN, **_LIN_DTYPES),
    Case("linear_ce", f"polyloss.linear_cross_entropy({_H}, label_smoothing=0.2, class_chunk=2)"
         "  # probabilities", "polyloss",
         lambda m, p, t, w: _linear(m.linear_cross_entropy, p, t, label_smoothing=0.2,
                                    class_chunk=2),
         domain="class_probs", edges=("all_equal",), **_LIN_DTYPES),
    Case("linear_ce", f"linear_cross_entropy({_TH}, {_TB})", "torch",
         lambda m, p, t, w: _linear(m.linear_cross_entropy, p, t, "linear_bias"),
         domain="class_logits", edges=_LIN),
    Case("linear_ce", f"linear_cross_entropy({_TH}, weight=w, label_smoothing=0.2, "
         "reduction='none')", "torch",
         lambda m, p, t, w: _linear(m.linear_cross_entropy, p, t, weight=w, label_smoothing=0.2,
                                    reduction="none"),
         weighted=True, weight_kind="class", domain="class_logits", edges=_LIN),
    Case("linear_ce", f"linear_cross_entropy({_TH}, {_TB}, reduction='sum')  # probabilities",
         "torch", lambda m, p, t, w: _linear(m.linear_cross_entropy, p, t, "linear_bias",
                                             reduction="sum"),
         domain="class_probs", edges=("all_equal",)),
]
ALL_CASES += LINEAR

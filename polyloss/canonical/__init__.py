"""polyloss's own (canonical) API: one loss per concept, same numbers on every backend."""

from polyloss.canonical.classification import (
    binary_cross_entropy,
    cross_entropy,
    focal,
    gaussian_nll,
    kl_div,
    nll,
    poisson_nll,
    poly1_cross_entropy,
)
from polyloss.canonical.contrastive import contrastive, ntxent
from polyloss.canonical.embedding import (
    cosine_embedding,
    cosine_similarity,
    triplet_margin,
)
from polyloss.canonical.linear import linear_cross_entropy
from polyloss.canonical.margin import (
    categorical_hinge,
    hinge,
    hinge_embedding,
    margin_ranking,
    multi_margin,
    multilabel_margin,
    multilabel_soft_margin,
    soft_margin,
    squared_hinge,
)
from polyloss.canonical.overlap import (
    dice,
    jaccard,
    lovasz_hinge,
    lovasz_softmax,
    tversky,
)
from polyloss.canonical.regression import (
    huber,
    l1,
    log_cosh,
    mae,
    mape,
    mse,
    msle,
    quantile,
    rmse,
    smooth_l1,
)
from polyloss.canonical.sequence import ctc

__all__ = [
    "ctc",
    "contrastive", "ntxent",
    "dice", "jaccard", "tversky", "lovasz_hinge", "lovasz_softmax",
    "cosine_embedding", "cosine_similarity", "triplet_margin",
    "categorical_hinge", "hinge", "hinge_embedding", "margin_ranking", "multi_margin", "soft_margin",
    "squared_hinge", "multilabel_margin", "multilabel_soft_margin",
    "binary_cross_entropy", "cross_entropy", "focal", "gaussian_nll", "kl_div", "nll", "poisson_nll",
    "poly1_cross_entropy",
    "linear_cross_entropy",
    "huber", "l1", "log_cosh", "mae", "mape", "mse", "msle", "quantile", "rmse", "smooth_l1",
]

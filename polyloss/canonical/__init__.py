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
from polyloss.canonical.embedding import (
    cosine_embedding,
    cosine_similarity,
    triplet_margin,
)
from polyloss.canonical.margin import (
    categorical_hinge,
    hinge,
    hinge_embedding,
    margin_ranking,
    multi_margin,
    soft_margin,
    squared_hinge,
)
from polyloss.canonical.overlap import (
    dice,
    jaccard,
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

__all__ = [
    "dice", "jaccard", "tversky",
    "cosine_embedding", "cosine_similarity", "triplet_margin",
    "categorical_hinge", "hinge", "hinge_embedding", "margin_ranking", "multi_margin", "soft_margin",
    "squared_hinge",
    "binary_cross_entropy", "cross_entropy", "focal", "gaussian_nll", "kl_div", "nll", "poisson_nll",
    "poly1_cross_entropy",
    "huber", "l1", "log_cosh", "mae", "mape", "mse", "msle", "quantile", "rmse", "smooth_l1",
]

"""polyloss: one loss-function library for every array framework.

The canonical API (``polyloss.mse``, ``polyloss.huber``, ...) gives the same numbers on
NumPy, PyTorch, TensorFlow, MXNet, JAX, CuPy, Dask and array-api-strict arrays. The
convention mirrors ``polyloss.torch``, ``polyloss.keras``, ``polyloss.gluon`` and
``polyloss.optax`` reproduce each framework's own losses exactly, on any backend's arrays.
Importing polyloss imports no framework.
"""

from polyloss.backends import array_namespace, backend_of, device_of
from polyloss.canonical import (
    binary_cross_entropy,
    categorical_hinge,
    cosine_embedding,
    cosine_similarity,
    cross_entropy,
    dice,
    focal,
    gaussian_nll,
    hinge,
    hinge_embedding,
    huber,
    jaccard,
    kl_div,
    l1,
    log_cosh,
    mae,
    mape,
    margin_ranking,
    mse,
    msle,
    multi_margin,
    nll,
    poisson_nll,
    poly1_cross_entropy,
    quantile,
    rmse,
    smooth_l1,
    soft_margin,
    squared_hinge,
    triplet_margin,
    tversky,
)

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "array_namespace",
    "backend_of",
    "device_of",
    "dice",
    "jaccard",
    "tversky",
    "cosine_embedding",
    "cosine_similarity",
    "triplet_margin",
    "categorical_hinge",
    "hinge",
    "hinge_embedding",
    "margin_ranking",
    "multi_margin",
    "soft_margin",
    "squared_hinge",
    "binary_cross_entropy",
    "cross_entropy",
    "focal",
    "gaussian_nll",
    "kl_div",
    "nll",
    "poisson_nll",
    "poly1_cross_entropy",
    "huber",
    "l1",
    "log_cosh",
    "mae",
    "mape",
    "mse",
    "msle",
    "quantile",
    "rmse",
    "smooth_l1",
]

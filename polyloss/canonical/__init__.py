"""polyloss's own (canonical) API: one loss per concept, same numbers on every backend."""

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
    "huber", "l1", "log_cosh", "mae", "mape", "mse", "msle", "quantile", "rmse", "smooth_l1",
]

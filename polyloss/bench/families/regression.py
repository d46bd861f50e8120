"""Regression families: MSE, L1 and Huber (delta 1) on ``(rows, 10)`` float32 predictions.

The three are the same elementwise shape on every backend, so each backend registers them from
one table: (family, canonical function, the native's name, its arguments).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

import polyloss
from polyloss.bench.families._common import keras_order, mean_of, sides
from polyloss.bench.registry import Family, Size, family, rows

SIZES = (rows(8), rows(4096), rows(65536))


def _inputs(size: Size, rng: np.random.Generator) -> dict[str, np.ndarray]:
    # residuals ~ N(0, 2): about half of them beyond Huber's delta of 1
    return {
        "pred": rng.standard_normal(size.dims, dtype=np.float32),
        "target": rng.standard_normal(size.dims, dtype=np.float32),
    }


MSE = family("mse", "mean squared error, (rows, 10) float32", SIZES, _inputs, group="regression", order=10)
L1 = family("l1", "mean absolute error, (rows, 10) float32", SIZES, _inputs, group="regression", order=11)
HUBER = family(
    "huber",
    "Huber loss, delta 1, (rows, 10) float32 (about half the residuals beyond delta)",
    SIZES,
    _inputs,
    group="regression",
    order=12,
)
BOTH = ("polyloss", "mirror")


def _pair(d: Any, x: dict) -> tuple:
    return d.array(x["pred"]), d.array(x["target"])


# ---- NumPy: hand-written references (NumPy has no losses) ---------------------------------


def _np_huber(p: np.ndarray, t: np.ndarray) -> Any:
    d = p - t
    a = np.abs(d)
    return np.mean(np.where(a <= 1.0, 0.5 * d * d, a - 0.5))


_NUMPY: tuple[tuple[Family, str, Callable, str, Callable], ...] = (
    (MSE, "polyloss.mse", polyloss.mse, "np.mean((p - t) ** 2)", lambda p, t: np.mean((p - t) ** 2)),
    (L1, "polyloss.l1", polyloss.l1, "np.mean(np.abs(p - t))", lambda p, t: np.mean(np.abs(p - t))),
    (HUBER, "polyloss.huber", polyloss.huber, "np.where(|d| <= 1, d²/2, |d| - 1/2).mean()", _np_huber),
)
for _fam, _label, _canonical, _native_label, _native in _NUMPY:
    _fam.on(
        "numpy",
        native=_native_label,
        polyloss=_label,
        mirror=None,
        no_mirror="NumPy has no loss API to mirror",
        kind="reference",
        same_value=("polyloss",),
    )(lambda d, x, native=_native, canonical=_canonical: sides(_pair(d, x), native, canonical))


# ---- torch: torch.nn.functional and polyloss.torch share the names -------------------------


def _torch(name: str, canonical: Callable) -> Callable:
    def build(d: Any, x: dict) -> dict:
        import torch.nn.functional as F  # noqa: N812

        import polyloss.torch as pt

        return sides(_pair(d, x), getattr(F, name), canonical, getattr(pt, name))

    return build


for _fam, _label, _canonical, _name in (
    (MSE, "polyloss.mse", polyloss.mse, "mse_loss"),
    (L1, "polyloss.l1", polyloss.l1, "l1_loss"),
    (HUBER, "polyloss.huber", polyloss.huber, "huber_loss"),
):
    _fam.on("torch", native=f"F.{_name}", polyloss=_label, mirror=f"polyloss.torch.{_name}", same_value=BOTH)(
        _torch(_name, _canonical)
    )


# ---- TensorFlow: keras.losses objects and polyloss.keras's -----------------------------------


def _keras(name: str, kwargs: dict, canonical: Callable) -> Callable:
    def build(d: Any, x: dict) -> dict:
        import keras

        import polyloss.keras as pk

        native, mirror = getattr(keras.losses, name)(**kwargs), getattr(pk, name)(**kwargs)
        return sides(_pair(d, x), keras_order(native), canonical, keras_order(mirror))

    return build


for _fam, _label, _canonical, _name, _kwargs in (
    (MSE, "polyloss.mse", polyloss.mse, "MeanSquaredError", {}),
    (L1, "polyloss.l1", polyloss.l1, "MeanAbsoluteError", {}),
    (HUBER, "polyloss.huber", polyloss.huber, "Huber", {"delta": 1.0}),
):
    _args = "delta=1" if _kwargs else ""
    _fam.on(
        "tensorflow",
        native=f"keras.losses.{_name}({_args})",
        polyloss=_label,
        mirror=f"polyloss.keras.{_name}({_args})",
        same_value=BOTH,
    )(_keras(_name, _kwargs, _canonical))


# ---- MXNet: gluon.loss blocks on mx.nd arrays, one value per sample --------------------------


def _gluon(name: str, kwargs: dict, canonical: Callable) -> Callable:
    def build(d: Any, x: dict) -> dict:
        from mxnet.gluon import loss as gloss

        import polyloss.gluon as pg

        native, mirror = getattr(gloss, name)(**kwargs), getattr(pg, name)(**kwargs)
        return sides(_pair(d, x), native, canonical, mirror, blocks=True)

    return build


for _fam, _label, _canonical, _name, _kwargs, _note, _same in (
    # L2Loss is half the squared error: only its mirror computes the same number
    (MSE, "polyloss.mse", polyloss.mse, "L2Loss", {}, " (½, per sample)", ("mirror",)),
    (L1, "polyloss.l1", polyloss.l1, "L1Loss", {}, " (per sample)", BOTH),
    (
        HUBER,
        "polyloss.huber",
        polyloss.huber,
        "HuberLoss",
        {"rho": 1.0},
        " (= Huber at delta 1, per sample)",
        BOTH,
    ),
):
    _args = "rho=1" if _kwargs else ""
    _fam.on(
        "mxnet",
        native=f"gluon.loss.{_name}({_args}){_note}",
        polyloss=_label,
        mirror=f"polyloss.gluon.{_name}({_args})",
        same_value=_same,
    )(_gluon(_name, _kwargs, _canonical))


# ---- JAX: optax (unreduced, so .mean()) and polyloss.optax -----------------------------------


def _optax(name: str, canonical: Callable) -> Callable:
    def build(d: Any, x: dict) -> dict:
        import optax

        import polyloss.optax as po

        return sides(_pair(d, x), mean_of(getattr(optax.losses, name)), canonical, mean_of(getattr(po, name)))

    return build


MSE.on(
    "jax",
    native="optax.losses.squared_error(p, t).mean()",
    polyloss="polyloss.mse",
    mirror="polyloss.optax.squared_error(p, t).mean()",
    same_value=BOTH,
)(_optax("squared_error", polyloss.mse))
HUBER.on(
    "jax",
    native="optax.losses.huber_loss(p, t).mean() (delta 1)",
    polyloss="polyloss.huber",
    mirror="polyloss.optax.huber_loss(p, t).mean()",
    same_value=BOTH,
)(_optax("huber_loss", polyloss.huber))


@L1.on(
    "jax",
    native="jnp.mean(jnp.abs(p - t))",
    polyloss="polyloss.l1",
    mirror=None,
    no_mirror="optax has no L1 loss, so polyloss.optax has none",
    kind="reference",
    same_value=("polyloss",),
)
def _l1_jax(d: Any, x: dict) -> dict:
    import jax.numpy as jnp

    return sides(_pair(d, x), lambda p, t: jnp.mean(jnp.abs(p - t)), polyloss.l1)

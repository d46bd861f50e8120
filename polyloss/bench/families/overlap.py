"""Dice: channels-last segmentation maps ``(N, 16, 16, 4)`` float32 with one-hot targets, at
batch 8 and 4096. Keras's ``Dice`` pools the whole array on probabilities; optax's
``dice_loss`` takes logits (softmax over the classes) and scores each sample and class
(smooth 1). Each polyloss side computes its native's variant.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import polyloss
from polyloss.bench.families._common import sides
from polyloss.bench.registry import Size, family

SIZES = (
    Size("8x16x16x4", 8, (8, 16, 16, 4), "small"),
    Size("4096x16x16x4", 4096, (4096, 16, 16, 4), "large"),
)


def _inputs(size: Size, rng: np.random.Generator) -> dict[str, np.ndarray]:
    logits = rng.standard_normal(size.dims, dtype=np.float32)
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    labels = rng.integers(0, size.dims[-1], size.dims[:-1])
    onehot = (labels[..., None] == np.arange(size.dims[-1])).astype(np.float32)
    return {
        "logits": logits,
        "probs": (e / e.sum(axis=-1, keepdims=True)).astype(np.float32),
        "onehot": onehot,
    }


DICE = family(
    "dice",
    "soft Dice on (N, 16, 16, 4) channels-last maps, one-hot targets",
    SIZES,
    _inputs,
    group="segmentation",
    order=70,
)
DICE.without("torch", "torch has no Dice loss (and polyloss.torch none)")
DICE.without("mxnet", "Gluon has no Dice loss (and polyloss.gluon none)")


def _whole_array(p: Any, t: Any) -> Any:
    return polyloss.dice(p, t, pooling="batch")


def _np_dice(p: np.ndarray, t: np.ndarray) -> Any:
    return 1.0 - 2.0 * np.sum(p * t) / (np.sum(p) + np.sum(t) + 1e-7)


@DICE.on(
    "numpy",
    native="1 - 2·Σpt / (Σp + Σt + 1e-7), whole array, NumPy",
    polyloss="polyloss.dice(p, t, pooling='batch')",
    mirror=None,
    no_mirror="NumPy has no loss API to mirror",
    kind="reference",
    same_value=("polyloss",),
)
def _dice_numpy(d, x):
    p, t = d.array(x["probs"]), d.array(x["onehot"])
    return sides((p, t), _np_dice, _whole_array)


@DICE.on(
    "tensorflow",
    native="keras.losses.Dice() (whole array, probabilities)",
    polyloss="polyloss.dice(p, t, pooling='batch')",
    mirror="polyloss.keras.Dice()",
    same_value=("polyloss", "mirror"),
)
def _dice_tensorflow(d, x):
    import keras

    import polyloss.keras as pk

    p, t = d.array(x["probs"]), d.array(x["onehot"])
    native, mirror = keras.losses.Dice(), pk.Dice()
    return sides((p, t), lambda p, t: native(t, p), _whole_array, lambda p, t: mirror(t, p))


@DICE.on(
    "jax",
    native="optax.losses.dice_loss(z, t).mean() (softmax, per sample and class, smooth 1)",
    polyloss="polyloss.dice(z, t, activation='softmax', class_axis=-1, smooth=1, eps=0)",
    mirror="polyloss.optax.dice_loss(z, t).mean()",
    same_value=("polyloss", "mirror"),
)
def _dice_jax(d, x):
    import optax

    import polyloss.optax as po

    z, t = d.array(x["logits"]), d.array(x["onehot"])
    return sides(
        (z, t),
        lambda z, t: optax.losses.dice_loss(z, t).mean(),
        lambda z, t: polyloss.dice(z, t, activation="softmax", class_axis=-1, smooth=1.0, eps=0.0),
        lambda z, t: po.dice_loss(z, t).mean(),
    )

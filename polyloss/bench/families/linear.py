"""Linear cross-entropy: hidden states (rows, 512) float32, a (8192, 512) weight, class-index
labels; the loss of ``hidden @ weight.T`` without materialising it (polyloss) against the
framework's cross-entropy of the explicit logits (native). The bench differentiates w.r.t. the
first argument (the hidden states) only; the training-step comparison with ``dW`` as well, and
peak memory, is ``python -m polyloss.bench_linear`` (docs/linear_cross_entropy.md).
"""

from __future__ import annotations

from typing import Any

import numpy as np

import polyloss
from polyloss.bench.families._common import mean_of, sides
from polyloss.bench.registry import Size, family

SIZES = (
    Size("8x512x8192", 8, (8, 512, 8192), "small"),
    Size("4096x512x8192", 4096, (4096, 512, 8192), "large"),
)


def _inputs(size: Size, rng: np.random.Generator) -> dict[str, np.ndarray]:
    n, f, c = size.dims
    return {
        "hidden": (0.5 * rng.standard_normal((n, f))).astype(np.float32),
        "weight": (rng.standard_normal((c, f)) / np.sqrt(f)).astype(np.float32),
        "labels": rng.integers(0, c, n).astype(np.int64),
    }


LCE = family(
    "linear_ce",
    "linear cross-entropy: (rows, 512) hidden x (8192, 512) weight, class-index labels, float32",
    SIZES,
    _inputs,
    group="classification",
    order=35,
)
LCE.without("mxnet", "Gluon has no linear cross-entropy (a Dense layer, then SoftmaxCELoss)")


def _canonical(h: Any, w: Any, y: Any) -> Any:
    return polyloss.linear_cross_entropy(h, w, y)


def _np_linear_ce(h: np.ndarray, w: np.ndarray, y: np.ndarray) -> Any:
    z = h @ w.T
    m = z.max(axis=1, keepdims=True)
    logp = z - m - np.log(np.exp(z - m).sum(axis=1, keepdims=True))
    return -np.take_along_axis(logp, y[:, None], axis=1).mean()


@LCE.on(
    "numpy",
    native="z = h @ w.T; log-softmax (max-shifted) + take_along_axis, NumPy",
    polyloss="polyloss.linear_cross_entropy",
    mirror=None,
    no_mirror="NumPy has no loss API to mirror",
    kind="reference",
    same_value=("polyloss",),
)
def _linear_numpy(d, x):
    h, w, y = d.array(x["hidden"]), d.array(x["weight"]), d.array(x["labels"])
    return sides((h, w, y), _np_linear_ce, _canonical)


@LCE.on(
    "torch",
    native="F.cross_entropy(h @ w.T, y)",
    polyloss="polyloss.linear_cross_entropy",
    mirror="polyloss.torch.linear_cross_entropy",
    same_value=("polyloss", "mirror"),
)
def _linear_torch(d, x):
    import torch.nn.functional as F  # noqa: N812

    import polyloss.torch as pt

    h, w, y = d.array(x["hidden"]), d.array(x["weight"]), d.array(x["labels"])
    return sides((h, w, y), lambda h, w, y: F.cross_entropy(h @ w.T, y), _canonical,
                 pt.linear_cross_entropy)


@LCE.on(
    "jax",
    native="optax.losses.softmax_cross_entropy_with_integer_labels(h @ w.T, y).mean()",
    polyloss="polyloss.linear_cross_entropy",
    mirror=None,
    no_mirror="optax has no linear cross-entropy",
    same_value=("polyloss",),
)
def _linear_jax(d, x):
    import optax

    h, w, y = d.array(x["hidden"]), d.array(x["weight"]), d.array(x["labels"])
    native = mean_of(lambda h, w, y: optax.losses.softmax_cross_entropy_with_integer_labels(h @ w.T, y))
    return sides((h, w, y), native, _canonical)


@LCE.on(
    "tensorflow",
    native="tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, h @ w.T))",
    polyloss="polyloss.linear_cross_entropy",
    mirror=None,
    no_mirror="Keras has no linear cross-entropy",
    same_value=("polyloss",),
)
def _linear_tensorflow(d, x):
    import tensorflow as tf

    h, w, y = d.array(x["hidden"]), d.array(x["weight"]), d.array(x["labels"])

    def native(h: Any, w: Any, y: Any) -> Any:
        logits = tf.matmul(h, w, transpose_b=True)
        return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))

    return sides((h, w, y), native, _canonical)

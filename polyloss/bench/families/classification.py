"""Classification families: BCE with logits, cross-entropy (plain, label smoothing 0.1, class
weights with ``ignore_index``), binary focal (gamma 2) and KL divergence.

Cross-entropy runs at 10 classes (8, 4096 and 65536 rows) and at 4096 x 1000. Labels start as
class indices on every side: where a native needs one-hot or per-sample weights, they are built
inside the timed call (as a user with index labels does), and the mirror gets the same.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import polyloss
from polyloss.bench.families._common import keras_order, mean_of, sides
from polyloss.bench.registry import Impl, Size, family, rows

ROWS10 = (rows(8), rows(4096), rows(65536))
CE_SIZES = (rows(8), rows(4096), rows(65536), rows(4096, 1000))
SMOOTHING = 0.1
IGNORE = 0  # the ignored class of the weighted family (a "background" class)


def _logits_labels(size: Size, rng: np.random.Generator) -> dict[str, np.ndarray]:
    n, c = size.dims
    return {
        "logits": 2.0 * rng.standard_normal((n, c), dtype=np.float32),
        "labels": rng.integers(0, c, n).astype(np.int64),
        "class_weight": rng.uniform(0.5, 1.5, c).astype(np.float32),
    }


def _binary(size: Size, rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        "logits": 2.0 * rng.standard_normal(size.dims, dtype=np.float32),
        "targets": (rng.random(size.dims) < 0.5).astype(np.float32),
    }


def _np_log_softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    s = z - np.max(z, axis=axis, keepdims=True)
    return s - np.log(np.sum(np.exp(s), axis=axis, keepdims=True))


def _distributions(size: Size, rng: np.random.Generator) -> dict[str, np.ndarray]:
    log_q = _np_log_softmax(rng.standard_normal(size.dims, dtype=np.float32))
    p = np.exp(_np_log_softmax(rng.standard_normal(size.dims, dtype=np.float32)))
    return {
        "log_q": log_q.astype(np.float32),
        "q": np.exp(log_q).astype(np.float32),
        "p": p.astype(np.float32),
    }


BCE = family(
    "bce_logits",
    "binary cross-entropy on logits, (rows, 10) float32, 0/1 targets",
    ROWS10,
    _binary,
    group="classification",
    order=20,
)
CE = family(
    "ce",
    "softmax cross-entropy, class-index labels, (rows, classes) float32",
    CE_SIZES,
    _logits_labels,
    group="classification",
    order=30,
)
CE_LS = family(
    "ce_smooth",
    f"cross-entropy with label smoothing {SMOOTHING}, class-index labels",
    CE_SIZES,
    _logits_labels,
    group="classification",
    order=31,
)
CE_W = family(
    "ce_weighted",
    f"cross-entropy with class weights and ignore_index={IGNORE} (the ignored "
    "class is about 1/C of the labels)",
    CE_SIZES,
    _logits_labels,
    group="classification",
    order=32,
)
FOCAL = family(
    "focal",
    "binary sigmoid focal loss, gamma 2, on logits, (rows, 10) float32",
    ROWS10,
    _binary,
    group="classification",
    order=40,
)
KL = family(
    "kl",
    "KL divergence KL(p || q), (rows, 10) float32 distributions",
    ROWS10,
    _distributions,
    group="classification",
    order=50,
)


# ---- BCE with logits -------------------------------------------------------------------------


def _np_bce(z: np.ndarray, y: np.ndarray) -> Any:
    return np.mean(np.logaddexp(0.0, z) - z * y)


def _bce_canonical(z: Any, y: Any) -> Any:
    return polyloss.binary_cross_entropy(z, y, from_logits=True)


@BCE.on(
    "numpy",
    native="np.mean(np.logaddexp(0, z) - z * y)",
    polyloss="polyloss.binary_cross_entropy(from_logits=True)",
    mirror=None,
    no_mirror="NumPy has no loss API to mirror",
    kind="reference",
    same_value=("polyloss",),
)
def _bce_numpy(d, x):
    z, y = d.array(x["logits"]), d.array(x["targets"])
    return sides((z, y), _np_bce, _bce_canonical)


@BCE.on(
    "torch",
    native="F.binary_cross_entropy_with_logits",
    polyloss="polyloss.binary_cross_entropy(from_logits=True)",
    mirror="polyloss.torch.binary_cross_entropy_with_logits",
    same_value=("polyloss", "mirror"),
)
def _bce_torch(d, x):
    import torch.nn.functional as F  # noqa: N812

    import polyloss.torch as pt

    z, y = d.array(x["logits"]), d.array(x["targets"])
    return sides(
        (z, y), F.binary_cross_entropy_with_logits, _bce_canonical, pt.binary_cross_entropy_with_logits
    )


@BCE.on(
    "tensorflow",
    native="keras.losses.BinaryCrossentropy(from_logits=True)",
    polyloss="polyloss.binary_cross_entropy(from_logits=True)",
    mirror="polyloss.keras.BinaryCrossentropy(from_logits=True)",
    same_value=("polyloss", "mirror"),
)
def _bce_tensorflow(d, x):
    import keras

    import polyloss.keras as pk

    z, y = d.array(x["logits"]), d.array(x["targets"])
    return sides(
        (z, y),
        keras_order(keras.losses.BinaryCrossentropy(from_logits=True)),
        _bce_canonical,
        keras_order(pk.BinaryCrossentropy(from_logits=True)),
    )


@BCE.on(
    "mxnet",
    native="gluon.loss.SigmoidBCELoss() (per sample)",
    polyloss="polyloss.binary_cross_entropy(from_logits=True)",
    mirror="polyloss.gluon.SigmoidBCELoss()",
    same_value=("polyloss", "mirror"),
)
def _bce_mxnet(d, x):
    from mxnet.gluon import loss as gloss

    import polyloss.gluon as pg

    z, y = d.array(x["logits"]), d.array(x["targets"])
    native, mirror = gloss.SigmoidBCELoss(), pg.SigmoidBCELoss()
    return sides((z, y), native, _bce_canonical, mirror, blocks=True)


@BCE.on(
    "jax",
    native="optax.losses.sigmoid_binary_cross_entropy(z, y).mean()",
    polyloss="polyloss.binary_cross_entropy(from_logits=True)",
    mirror="polyloss.optax.sigmoid_binary_cross_entropy(z, y).mean()",
    same_value=("polyloss", "mirror"),
)
def _bce_jax(d, x):
    import optax

    import polyloss.optax as po

    z, y = d.array(x["logits"]), d.array(x["targets"])
    return sides(
        (z, y),
        mean_of(optax.losses.sigmoid_binary_cross_entropy),
        _bce_canonical,
        mean_of(po.sigmoid_binary_cross_entropy),
    )


# ---- cross-entropy: NumPy references ------------------------------------------------------------


def _np_nll(z: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    logp = _np_log_softmax(z)
    return -np.take_along_axis(logp, y[:, None], axis=1)[:, 0], logp


def _np_ce(z: np.ndarray, y: np.ndarray) -> Any:
    return np.mean(_np_nll(z, y)[0])


def _np_ce_smooth(z: np.ndarray, y: np.ndarray) -> Any:
    nll, logp = _np_nll(z, y)
    return np.mean((1.0 - SMOOTHING) * nll - SMOOTHING * np.mean(logp, axis=1))


def _np_ce_weighted(z: np.ndarray, y: np.ndarray, w: np.ndarray) -> Any:
    nll, _ = _np_nll(z, y)
    wy = w[y] * (y != IGNORE)
    return np.sum(wy * nll) / np.sum(wy)


@CE.on(
    "numpy",
    native="log-softmax (max-shifted) + take_along_axis, NumPy",
    polyloss="polyloss.cross_entropy",
    mirror=None,
    no_mirror="NumPy has no loss API to mirror",
    kind="reference",
    same_value=("polyloss",),
)
def _ce_numpy(d, x):
    z, y = d.array(x["logits"]), d.array(x["labels"])
    return sides((z, y), _np_ce, polyloss.cross_entropy)


def _ce_smooth_canonical(z: Any, y: Any) -> Any:
    return polyloss.cross_entropy(z, y, label_smoothing=SMOOTHING)


@CE_LS.on(
    "numpy",
    native="(1-ε)·nll - ε·mean(log-softmax), NumPy",
    polyloss=f"polyloss.cross_entropy(label_smoothing={SMOOTHING})",
    mirror=None,
    no_mirror="NumPy has no loss API to mirror",
    kind="reference",
    same_value=("polyloss",),
)
def _ce_smooth_numpy(d, x):
    z, y = d.array(x["logits"]), d.array(x["labels"])
    return sides((z, y), _np_ce_smooth, _ce_smooth_canonical)


def _ce_weighted_canonical(z: Any, y: Any, w: Any) -> Any:
    # torch's weighted mean: divide by the summed weights of the counted labels
    return polyloss.cross_entropy(z, y, class_weight=w, ignore_index=IGNORE, normalizer="sum_of_weights")


@CE_W.on(
    "numpy",
    native="Σ w_y·nll / Σ w_y over labels != ignore_index, NumPy",
    polyloss=f"polyloss.cross_entropy(class_weight=w, ignore_index={IGNORE}, normalizer='sum_of_weights')",
    mirror=None,
    no_mirror="NumPy has no loss API to mirror",
    kind="reference",
    same_value=("polyloss",),
)
def _ce_weighted_numpy(d, x):
    z, y, w = d.array(x["logits"]), d.array(x["labels"]), d.array(x["class_weight"])
    return sides((z, y, w), _np_ce_weighted, _ce_weighted_canonical)


# ---- cross-entropy: torch -----------------------------------------------------------------------


@CE.on(
    "torch",
    native="F.cross_entropy",
    polyloss="polyloss.cross_entropy",
    mirror="polyloss.torch.cross_entropy",
    same_value=("polyloss", "mirror"),
)
def _ce_torch(d, x):
    import torch.nn.functional as F  # noqa: N812

    import polyloss.torch as pt

    z, y = d.array(x["logits"]), d.array(x["labels"])
    return sides((z, y), F.cross_entropy, polyloss.cross_entropy, pt.cross_entropy)


@CE_LS.on(
    "torch",
    native=f"F.cross_entropy(label_smoothing={SMOOTHING})",
    polyloss=f"polyloss.cross_entropy(label_smoothing={SMOOTHING})",
    mirror=f"polyloss.torch.cross_entropy(label_smoothing={SMOOTHING})",
    same_value=("polyloss", "mirror"),
)
def _ce_smooth_torch(d, x):
    import torch.nn.functional as F  # noqa: N812

    import polyloss.torch as pt

    z, y = d.array(x["logits"]), d.array(x["labels"])
    return sides(
        (z, y),
        lambda z, y: F.cross_entropy(z, y, label_smoothing=SMOOTHING),
        _ce_smooth_canonical,
        lambda z, y: pt.cross_entropy(z, y, label_smoothing=SMOOTHING),
    )


@CE_W.on(
    "torch",
    native=f"F.cross_entropy(weight=w, ignore_index={IGNORE})",
    polyloss=f"polyloss.cross_entropy(class_weight=w, ignore_index={IGNORE}, normalizer='sum_of_weights')",
    mirror=f"polyloss.torch.cross_entropy(weight=w, ignore_index={IGNORE})",
    same_value=("polyloss", "mirror"),
)
def _ce_weighted_torch(d, x):
    import torch.nn.functional as F  # noqa: N812

    import polyloss.torch as pt

    z, y, w = d.array(x["logits"]), d.array(x["labels"]), d.array(x["class_weight"])
    return sides(
        (z, y, w),
        lambda z, y, w: F.cross_entropy(z, y, weight=w, ignore_index=IGNORE),
        _ce_weighted_canonical,
        lambda z, y, w: pt.cross_entropy(z, y, weight=w, ignore_index=IGNORE),
    )


# ---- cross-entropy: TensorFlow (Keras) ----------------------------------------------------------


def _tf_labels(d: Any, x: dict) -> Any:
    return d.array(x["labels"].astype(np.int32))


@CE.on(
    "tensorflow",
    native="keras.losses.SparseCategoricalCrossentropy(from_logits=True)",
    polyloss="polyloss.cross_entropy",
    mirror="polyloss.keras.SparseCategoricalCrossentropy(from_logits=True)",
    same_value=("polyloss", "mirror"),
)
def _ce_tensorflow(d, x):
    import keras

    import polyloss.keras as pk

    z, y = d.array(x["logits"]), _tf_labels(d, x)
    return sides(
        (z, y),
        keras_order(keras.losses.SparseCategoricalCrossentropy(from_logits=True)),
        polyloss.cross_entropy,
        keras_order(pk.SparseCategoricalCrossentropy(from_logits=True)),
    )


@CE_LS.on(
    "tensorflow",
    native=f"keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing="
    f"{SMOOTHING}) on tf.one_hot(y)",
    polyloss=f"polyloss.cross_entropy(label_smoothing={SMOOTHING})",
    mirror=f"polyloss.keras.CategoricalCrossentropy(from_logits=True, label_smoothing={SMOOTHING}) on "
    "tf.one_hot(y)",
    same_value=("polyloss", "mirror"),
)
def _ce_smooth_tensorflow(d, x):
    import keras
    import tensorflow as tf

    import polyloss.keras as pk

    z, y = d.array(x["logits"]), _tf_labels(d, x)
    classes = x["logits"].shape[1]

    def one_hot(loss: Any) -> Any:
        return lambda z, y: loss(tf.one_hot(y, classes), z)

    native = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=SMOOTHING)
    mirror = pk.CategoricalCrossentropy(from_logits=True, label_smoothing=SMOOTHING)
    return sides((z, y), one_hot(native), _ce_smooth_canonical, one_hot(mirror))


@CE_W.on(
    "tensorflow",
    native=f"keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class="
    f"{IGNORE}) with sample_weight=tf.gather(w, y)",
    polyloss=f"polyloss.cross_entropy(class_weight=w, ignore_index={IGNORE})",
    mirror=f"polyloss.keras.SparseCategoricalCrossentropy(from_logits=True, ignore_class={IGNORE}) with "
    "sample_weight=tf.gather(w, y)",
)
def _ce_weighted_tensorflow(d, x):
    import keras
    import tensorflow as tf

    import polyloss.keras as pk

    z, y, w = d.array(x["logits"]), _tf_labels(d, x), d.array(x["class_weight"])

    def weighted(loss: Any) -> Any:
        return lambda z, y, w: loss(y, z, sample_weight=tf.gather(w, y))

    native = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=IGNORE)
    mirror = pk.SparseCategoricalCrossentropy(from_logits=True, ignore_class=IGNORE)
    return sides(
        (z, y, w),
        weighted(native),
        lambda z, y, w: polyloss.cross_entropy(z, y, class_weight=w, ignore_index=IGNORE),
        weighted(mirror),
    )


# ---- cross-entropy: MXNet (Gluon) ---------------------------------------------------------------


def _mx_labels(d: Any, x: dict) -> tuple[Any, Any]:
    """Gluon takes float labels; polyloss's canonical API takes integer ones."""
    return d.array(x["labels"].astype(np.float32)), d.array(x["labels"].astype(np.int32))


@CE.on(
    "mxnet",
    native="gluon.loss.SoftmaxCELoss() (per sample)",
    polyloss="polyloss.cross_entropy",
    mirror="polyloss.gluon.SoftmaxCELoss()",
    same_value=("polyloss", "mirror"),
)
def _ce_mxnet(d, x):
    from mxnet.gluon import loss as gloss

    import polyloss.gluon as pg

    z = d.array(x["logits"])
    yf, yi = _mx_labels(d, x)
    native, mirror = gloss.SoftmaxCELoss(), pg.SoftmaxCELoss()
    return {
        "native": Impl(native, (z, yf), block=native),
        "polyloss": Impl(polyloss.cross_entropy, (z, yi)),
        "mirror": Impl(mirror, (z, yf), block=mirror),
    }


@CE_LS.on(
    "mxnet",
    native="gluon.loss.SoftmaxCELoss(sparse_label=False) on a smoothed nd.one_hot(y)",
    polyloss=f"polyloss.cross_entropy(label_smoothing={SMOOTHING})",
    mirror="polyloss.gluon.SoftmaxCELoss(sparse_label=False) on a smoothed nd.one_hot(y)",
    same_value=("polyloss", "mirror"),
)
def _ce_smooth_mxnet(d, x):
    import mxnet as mx
    from mxnet.gluon import loss as gloss

    import polyloss.gluon as pg

    z = d.array(x["logits"])
    yf, yi = _mx_labels(d, x)
    classes = x["logits"].shape[1]
    native, mirror = gloss.SoftmaxCELoss(sparse_label=False), pg.SoftmaxCELoss(sparse_label=False)

    def smoothed(block: Any) -> Any:
        return lambda z, y: block(z, mx.nd.one_hot(y, classes) * (1.0 - SMOOTHING) + SMOOTHING / classes)

    return {
        "native": Impl(smoothed(native), (z, yf), block=native),
        "polyloss": Impl(_ce_smooth_canonical, (z, yi)),
        "mirror": Impl(smoothed(mirror), (z, yf), block=mirror),
    }


@CE_W.on(
    "mxnet",
    native="gluon.loss.SoftmaxCELoss() with sample_weight = w[y]·(y != ignore)",
    polyloss=f"polyloss.cross_entropy(class_weight=w, ignore_index={IGNORE})",
    mirror="polyloss.gluon.SoftmaxCELoss() with sample_weight = w[y]·(y != ignore)",
)
def _ce_weighted_mxnet(d, x):
    import mxnet as mx
    from mxnet.gluon import loss as gloss

    import polyloss.gluon as pg

    z, w = d.array(x["logits"]), d.array(x["class_weight"])
    yf, yi = _mx_labels(d, x)
    native, mirror = gloss.SoftmaxCELoss(), pg.SoftmaxCELoss()

    def weighted(block: Any) -> Any:
        def run(z: Any, y: Any, w: Any) -> Any:
            sw = (mx.nd.take(w, y) * (y != IGNORE)).reshape((-1, 1))
            return block(z, y, sw)

        return run

    return {
        "native": Impl(weighted(native), (z, yf, w), block=native),
        "polyloss": Impl(
            lambda z, y, w: polyloss.cross_entropy(z, y, class_weight=w, ignore_index=IGNORE), (z, yi, w)
        ),
        "mirror": Impl(weighted(mirror), (z, yf, w), block=mirror),
    }


# ---- cross-entropy: JAX (optax) -----------------------------------------------------------------


def _jax_labels(d: Any, x: dict) -> Any:
    return d.array(x["labels"].astype(np.int32))


@CE.on(
    "jax",
    native="optax.losses.softmax_cross_entropy_with_integer_labels(z, y).mean()",
    polyloss="polyloss.cross_entropy",
    mirror="polyloss.optax.softmax_cross_entropy_with_integer_labels(z, y).mean()",
    same_value=("polyloss", "mirror"),
)
def _ce_jax(d, x):
    import optax

    import polyloss.optax as po

    z, y = d.array(x["logits"]), _jax_labels(d, x)
    return sides(
        (z, y),
        mean_of(optax.losses.softmax_cross_entropy_with_integer_labels),
        polyloss.cross_entropy,
        mean_of(po.softmax_cross_entropy_with_integer_labels),
    )


@CE_LS.on(
    "jax",
    native=f"optax.losses.softmax_cross_entropy(z, optax.smooth_labels(jax.nn.one_hot(y), "
    f"{SMOOTHING})).mean()",
    polyloss=f"polyloss.cross_entropy(label_smoothing={SMOOTHING})",
    mirror=f"polyloss.optax.softmax_cross_entropy(z, polyloss.optax.smooth_labels(jax.nn.one_hot(y), "
    f"{SMOOTHING})).mean()",
    same_value=("polyloss", "mirror"),
)
def _ce_smooth_jax(d, x):
    import jax
    import optax

    import polyloss.optax as po

    z, y = d.array(x["logits"]), _jax_labels(d, x)
    classes = x["logits"].shape[1]

    def native(z: Any, y: Any) -> Any:
        t = optax.smooth_labels(jax.nn.one_hot(y, classes, dtype=z.dtype), SMOOTHING)
        return optax.losses.softmax_cross_entropy(z, t).mean()

    def mirror(z: Any, y: Any) -> Any:
        t = po.smooth_labels(jax.nn.one_hot(y, classes, dtype=z.dtype), SMOOTHING)
        return po.softmax_cross_entropy(z, t).mean()

    return sides((z, y), native, _ce_smooth_canonical, mirror)


@CE_W.on(
    "jax",
    native=f"optax softmax_cross_entropy_with_integer_labels weighted by w[y]·(y != {IGNORE}), "
    "divided by their sum",
    polyloss=f"polyloss.cross_entropy(class_weight=w, ignore_index={IGNORE}, normalizer='sum_of_weights')",
    mirror="the same with polyloss.optax",
    same_value=("polyloss", "mirror"),
)
def _ce_weighted_jax(d, x):
    import jax.numpy as jnp
    import optax

    import polyloss.optax as po

    z, y, w = d.array(x["logits"]), _jax_labels(d, x), d.array(x["class_weight"])

    def weighted(ce: Any) -> Any:
        def run(z: Any, y: Any, w: Any) -> Any:
            wy = w[y] * (y != IGNORE)
            return jnp.sum(ce(z, y) * wy) / jnp.sum(wy)

        return run

    return sides(
        (z, y, w),
        weighted(optax.losses.softmax_cross_entropy_with_integer_labels),
        _ce_weighted_canonical,
        weighted(po.softmax_cross_entropy_with_integer_labels),
    )


# ---- focal (binary, gamma 2) --------------------------------------------------------------------

GAMMA = 2.0
ALPHA = 0.25  # torchvision's default; the other frameworks' natives run without alpha-balancing


def _np_focal(z: np.ndarray, y: np.ndarray) -> Any:
    p = 1.0 / (1.0 + np.exp(-z))
    ce = np.logaddexp(0.0, z) - z * y
    p_t = p * y + (1.0 - p) * (1.0 - y)
    return np.mean(ce * (1.0 - p_t) ** GAMMA)


def _focal_canonical(z: Any, y: Any) -> Any:
    return polyloss.focal(z, y, gamma=GAMMA)


@FOCAL.on(
    "numpy",
    native="(1 - p_t)² · BCE(logits), NumPy",
    polyloss="polyloss.focal(gamma=2)",
    mirror=None,
    no_mirror="NumPy has no loss API to mirror",
    kind="reference",
    same_value=("polyloss",),
)
def _focal_numpy(d, x):
    z, y = d.array(x["logits"]), d.array(x["targets"])
    return sides((z, y), _np_focal, _focal_canonical)


def _torchvision_focal(z: Any, y: Any) -> Any:
    """``torchvision.ops.sigmoid_focal_loss(z, y, alpha=0.25, gamma=2, reduction="mean")``, line for
    line (torchvision writes it in torch ops; it is not installed here)."""
    import torch.nn.functional as F  # noqa: N812

    p = z.sigmoid()
    ce = F.binary_cross_entropy_with_logits(z, y, reduction="none")
    p_t = p * y + (1 - p) * (1 - y)
    loss = ce * ((1 - p_t) ** GAMMA)
    alpha_t = ALPHA * y + (1 - ALPHA) * (1 - y)
    return (alpha_t * loss).mean()


@FOCAL.on(
    "torch",
    native="torchvision.ops.sigmoid_focal_loss(alpha=0.25, gamma=2).mean(), its torch ops "
    "(torch has no focal loss)",
    polyloss="polyloss.focal(gamma=2, alpha=0.25)",
    mirror="polyloss.torch.sigmoid_focal_loss(alpha=0.25, gamma=2, reduction='mean')",
    kind="reference",
    same_value=("polyloss", "mirror"),
)
def _focal_torch(d, x):
    import polyloss.torch as pt

    z, y = d.array(x["logits"]), d.array(x["targets"])
    return sides(
        (z, y),
        _torchvision_focal,
        lambda z, y: polyloss.focal(z, y, gamma=GAMMA, alpha=ALPHA),
        lambda z, y: pt.sigmoid_focal_loss(z, y, alpha=ALPHA, gamma=GAMMA, reduction="mean"),
    )


@FOCAL.on(
    "tensorflow",
    native="keras.losses.BinaryFocalCrossentropy(from_logits=True, gamma=2)",
    polyloss="polyloss.focal(gamma=2)",
    mirror="polyloss.keras.BinaryFocalCrossentropy(from_logits=True, gamma=2)",
)
def _focal_tensorflow(d, x):
    import keras

    import polyloss.keras as pk

    z, y = d.array(x["logits"]), d.array(x["targets"])
    return sides(
        (z, y),
        keras_order(keras.losses.BinaryFocalCrossentropy(from_logits=True, gamma=GAMMA)),
        _focal_canonical,
        keras_order(pk.BinaryFocalCrossentropy(from_logits=True, gamma=GAMMA)),
    )


FOCAL.without("mxnet", "Gluon has no focal loss (and polyloss.gluon none)")


@FOCAL.on(
    "jax",
    native="optax.losses.sigmoid_focal_loss(z, y, gamma=2).mean()",
    polyloss="polyloss.focal(gamma=2)",
    mirror="polyloss.optax.sigmoid_focal_loss(z, y, gamma=2).mean()",
    same_value=("polyloss", "mirror"),
)
def _focal_jax(d, x):
    import optax

    import polyloss.optax as po

    z, y = d.array(x["logits"]), d.array(x["targets"])
    return sides(
        (z, y),
        lambda z, y: optax.losses.sigmoid_focal_loss(z, y, gamma=GAMMA).mean(),
        _focal_canonical,
        lambda z, y: po.sigmoid_focal_loss(z, y, gamma=GAMMA).mean(),
    )


# ---- KL divergence -----------------------------------------------------------------------------


def _np_kl(log_q: np.ndarray, p: np.ndarray) -> Any:
    return np.sum(p * (np.log(p) - log_q)) / log_q.shape[0]


@KL.on(
    "numpy",
    native="Σ p·(log p - log q) / rows, NumPy",
    polyloss="polyloss.kl_div(log_q, p)",
    mirror=None,
    no_mirror="NumPy has no loss API to mirror",
    kind="reference",
    same_value=("polyloss",),
)
def _kl_numpy(d, x):
    lq, p = d.array(x["log_q"]), d.array(x["p"])
    return sides((lq, p), _np_kl, polyloss.kl_div)


@KL.on(
    "torch",
    native="F.kl_div(log_q, p, reduction='batchmean')",
    polyloss="polyloss.kl_div(log_q, p)",
    mirror="polyloss.torch.kl_div(log_q, p, reduction='batchmean')",
    same_value=("polyloss", "mirror"),
)
def _kl_torch(d, x):
    import torch.nn.functional as F  # noqa: N812

    import polyloss.torch as pt

    lq, p = d.array(x["log_q"]), d.array(x["p"])
    return sides(
        (lq, p),
        lambda q, p: F.kl_div(q, p, reduction="batchmean"),
        polyloss.kl_div,
        lambda q, p: pt.kl_div(q, p, reduction="batchmean"),
    )


@KL.on(
    "tensorflow",
    native="keras.losses.KLDivergence() on probabilities q",
    polyloss="polyloss.kl_div(q, p, pred_kind='probs')",
    mirror="polyloss.keras.KLDivergence()",
    same_value=("polyloss", "mirror"),
)
def _kl_tensorflow(d, x):
    import keras

    import polyloss.keras as pk

    q, p = d.array(x["q"]), d.array(x["p"])
    return sides(
        (q, p),
        keras_order(keras.losses.KLDivergence()),
        lambda q, p: polyloss.kl_div(q, p, pred_kind="probs"),
        keras_order(pk.KLDivergence()),
    )


@KL.on(
    "mxnet",
    native="gluon.loss.KLDivLoss(from_logits=True) (per sample, mean over classes)",
    polyloss="polyloss.kl_div(log_q, p)",
    mirror="polyloss.gluon.KLDivLoss(from_logits=True)",
)
def _kl_mxnet(d, x):
    from mxnet.gluon import loss as gloss

    import polyloss.gluon as pg

    lq, p = d.array(x["log_q"]), d.array(x["p"])
    native, mirror = gloss.KLDivLoss(from_logits=True), pg.KLDivLoss(from_logits=True)
    return sides((lq, p), native, polyloss.kl_div, mirror, blocks=True)


@KL.on(
    "jax",
    native="optax.losses.kl_divergence(log_q, p).mean()",
    polyloss="polyloss.kl_div(log_q, p)",
    mirror="polyloss.optax.kl_divergence(log_q, p).mean()",
    same_value=("polyloss", "mirror"),
)
def _kl_jax(d, x):
    import optax

    import polyloss.optax as po

    lq, p = d.array(x["log_q"]), d.array(x["p"])
    return sides(
        (lq, p),
        mean_of(optax.losses.kl_divergence),
        polyloss.kl_div,
        mean_of(po.kl_divergence),
    )

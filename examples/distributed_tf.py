"""tf.distribute.MirroredStrategy over 2 logical CPU devices with polyloss losses.

A 5-class linear classifier (float64) trains for a few SGD steps on a batch of 32 that the
strategy splits into two replicas of 16, three ways, each against the same run on one device:

1. ``model.fit`` with ``polyloss.keras.SparseCategoricalCrossentropy`` and
   ``polyloss.keras.MeanSquaredError`` (Keras's own rule: each replica's
   ``sum_over_batch_size`` mean, scaled by 1/replicas, gradients summed; exact for equal
   replica batches without masks);
2. ``model.fit`` with a loss function over ``polyloss.cross_entropy(..., reduction="parts")``
   with ``ignore_index`` and class weights, the replicas holding different numbers of ignored
   labels, and ``polyloss.distributed.tf_replica_loss`` summing the normaliser across them;
3. a custom loop (``strategy.run``, ``GradientTape``, ``optimizer.apply_gradients``) with the
   same loss.

Prints one JSON object with the largest parameter difference from the one-device run per case
(absolute, and relative to each tensor's largest entry), and for 2 also the naive per-replica
mean; exits 1 if a case is off by more than 1e-12. TensorFlow must see the two logical devices
before any operation runs, so run this as its own process:

    python examples/distributed_tf.py [--steps 3]
"""

from __future__ import annotations

import argparse
import json
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    _cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
tf.config.threading.set_inter_op_parallelism_threads(2)
tf.config.threading.set_intra_op_parallelism_threads(1)

import keras  # noqa: E402

import polyloss  # noqa: E402
import polyloss.keras  # noqa: E402
from polyloss.distributed import tf_replica_loss  # noqa: E402

keras.config.set_floatx("float64")
IGNORE = -1
LR = 0.5
BATCH = 32


def make_data() -> dict:
    rng = np.random.default_rng(11)
    labels = rng.integers(0, 5, size=BATCH)
    masked = labels.copy()
    masked[[0, 2, 3, 5, 8, 11, 19]] = IGNORE  # 6 ignored in the first replica's half, 1 in the second
    return {"x": rng.normal(size=(BATCH, 8)), "labels": labels, "masked": masked,
            "targets": rng.normal(size=(BATCH, 5)),
            "kernel": rng.normal(size=(8, 5)) * 0.3, "bias": rng.normal(size=(5,)) * 0.1,
            "class_weight": np.array([0.5, 1.0, 2.0, 1.5, 0.75])}


def make_model(data: dict) -> keras.Model:
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(5)])
    model.layers[0].set_weights([data["kernel"], data["bias"]])
    return model


def global_ce(class_weight: np.ndarray):
    def loss(y_true, y_pred):
        # made in the call, so on the replica's device (polyloss refuses arrays on two devices)
        cw = tf.constant(class_weight)
        parts = polyloss.cross_entropy(y_pred, tf.cast(y_true, tf.int64), ignore_index=IGNORE,
                                       class_weight=cw, normalizer="sum_of_weights",
                                       reduction="parts")
        return tf_replica_loss(parts)
    return loss


def naive_ce(class_weight: np.ndarray):
    def loss(y_true, y_pred):  # each replica's own mean: Keras then averages the replicas
        cw = tf.constant(class_weight)
        return polyloss.cross_entropy(y_pred, tf.cast(y_true, tf.int64), ignore_index=IGNORE,
                                      class_weight=cw, normalizer="sum_of_weights")
    return loss


def fit(strategy, data: dict, loss, labels: np.ndarray, steps: int) -> list[np.ndarray]:
    with strategy.scope():
        model = make_model(data)
        model.compile(optimizer=keras.optimizers.SGD(LR), loss=loss, jit_compile=False)
    model.fit(data["x"], labels, batch_size=BATCH, epochs=steps, shuffle=False, verbose=0)
    return [w.copy() for w in model.get_weights()]


def custom_loop(strategy, data: dict, steps: int) -> list[np.ndarray]:
    with strategy.scope():
        model = make_model(data)
        optimizer = keras.optimizers.SGD(LR)
        loss_fn = global_ce(data["class_weight"])
    dataset = tf.data.Dataset.from_tensor_slices((data["x"], data["masked"])).batch(BATCH)
    batch = next(iter(strategy.experimental_distribute_dataset(dataset)))

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    for _ in range(steps):
        strategy.run(step, args=batch)
    return [w.copy() for w in model.get_weights()]


def differences(params: list[np.ndarray], reference: list[np.ndarray]) -> dict:
    return {"max_abs": max(float(np.max(np.abs(p - r))) for p, r in zip(params, reference, strict=True)),
            "max_rel": max(float(np.max(np.abs(p - r)) / np.max(np.abs(r)))
                           for p, r in zip(params, reference, strict=True))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args(argv)
    data = make_data()
    one = tf.distribute.OneDeviceStrategy("/cpu:0")
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert mirrored.num_replicas_in_sync == 2
    cases = {
        "fit_keras_scce": lambda s: fit(
            s, data, polyloss.keras.SparseCategoricalCrossentropy(from_logits=True),
            data["labels"], args.steps),
        "fit_keras_mse": lambda s: fit(
            s, data, polyloss.keras.MeanSquaredError(), data["targets"], args.steps),
        "fit_global_ce_ignore_index": lambda s: fit(
            s, data, global_ce(data["class_weight"]), data["masked"], args.steps),
        "fit_naive_ce_ignore_index": lambda s: fit(
            s, data, naive_ce(data["class_weight"]), data["masked"], args.steps),
        "custom_loop_global_ce_ignore_index": lambda s: custom_loop(s, data, args.steps),
    }
    report = {"engine": "tf.distribute.MirroredStrategy, 2 logical CPUs", "steps": args.steps}
    for name, run in cases.items():
        report[name] = differences(run(mirrored), run(one))
    print(json.dumps(report))
    ok = all(v["max_rel"] <= 1e-12 for k, v in report.items()
             if isinstance(v, dict) and "naive" not in k)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""``polyloss.keras`` as a drop-in for ``keras.losses`` inside real Keras training.

Every class in ``polyloss.keras.__all__`` goes into ``model.compile(loss=...)`` of a small
model (one independent Dense head per loss, so each head's weights depend on its loss only)
and is trained with ``model.fit`` for 2 steps with ``sample_weight`` (and, for single-output
classification models, 2 more with ``class_weight``), next to the same model compiled with
``keras.losses.<Name>``: weights, history and ``model.evaluate`` agree to float32 rounding.
The TensorFlow Keras backend runs in this process; JAX and torch run the same worker in one
subprocess each (Keras fixes its backend per process through ``KERAS_BACKEND``). Also:
``model.save``/``keras.models.load_model`` and ``get_config``/``from_config`` round trips, and
``tf.function(jit_compile=True)`` on the loss call.

Probability heads end in ``Rescaling(1.0)`` (exact: ``x·1 + 0``) so that Keras's TensorFlow
backend cannot see the sigmoid/softmax behind them and silently use its logits (a documented
deliberate difference of polyloss: it cannot see that provenance).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

keras = pytest.importorskip("keras")

import polyloss.keras as pk  # noqa: E402

N, BATCH, T, S = 8, 4, 6, 3  # 2 steps per epoch; CTC: 6 frames, up to 3 labels, 4 classes
SEED = 0
# Float32 training: the two runs may differ by the rounding of the loss's own float32
# operations (polyloss's formulas follow Keras's, but not always op for op); 2 SGD steps
# with learning rate 0.05 keep those differences at a few float32 ulps of the weights.
RTOL, ATOL = 1e-5, 1e-6
JIT = False

# name -> (constructor kwargs, head kind, target kind). Every class of polyloss.keras.__all__.
CASES: dict[str, tuple[dict, str, str]] = {
    "MeanSquaredError": ({}, "linear3", "normal3"),
    "MeanAbsoluteError": ({}, "linear3", "normal3"),
    "MeanAbsolutePercentageError": ({}, "linear3", "positive3"),
    "MeanSquaredLogarithmicError": ({}, "softplus3", "positive3"),
    "Huber": ({"delta": 0.5}, "linear3", "normal3"),
    "LogCosh": ({}, "linear3", "normal3"),
    "BinaryCrossentropy": ({"from_logits": True, "label_smoothing": 0.1}, "linear1", "binary1"),
    "BinaryFocalCrossentropy": ({"apply_class_balancing": True, "gamma": 2.0}, "sigmoid1", "binary1"),
    "CategoricalCrossentropy": ({"from_logits": True, "label_smoothing": 0.1}, "linear3", "onehot3"),
    "CategoricalFocalCrossentropy": ({"alpha": 0.25, "gamma": 2.0}, "softmax3", "onehot3"),
    "SparseCategoricalCrossentropy": ({"from_logits": True, "ignore_class": 2}, "linear3", "labels3"),
    "KLDivergence": ({}, "softmax3", "simplex3"),
    "Poisson": ({}, "softplus3", "counts3"),
    "Hinge": ({}, "linear1", "binary1"),
    "SquaredHinge": ({}, "linear1", "binary1"),
    "CategoricalHinge": ({}, "linear3", "onehot3"),
    "CosineSimilarity": ({"axis": -1}, "linear3", "normal3"),
    "Dice": ({}, "sigmoid3", "binary3"),
    "Tversky": ({"alpha": 0.3, "beta": 0.7}, "sigmoid3", "binary3"),
    "Circle": ({"gamma": 8.0, "margin": 0.25}, "embedding", "labels3"),
    "CTC": ({}, "ctc", "ctc"),
    "CategoricalGeneralizedCrossEntropy": ({"q": 0.7}, "softmax3", "labels3"),
}
# single-output models trained with class_weight (Keras refuses it for several outputs)
CLASS_WEIGHTED = ("BinaryCrossentropy", "SparseCategoricalCrossentropy", "CategoricalCrossentropy",
                  "Hinge", "CategoricalGeneralizedCrossEntropy")
CLASS_WEIGHT = {0: 0.5, 1: 2.0, 2: 1.5}


def _targets(kind: str, rng: np.random.Generator) -> np.ndarray:
    """The target array of one head, float32 as Keras feeds it (labels as float32 too)."""
    if kind == "normal3":
        y = rng.normal(size=(N, 3))
    elif kind == "positive3":
        y = rng.uniform(0.5, 2.0, size=(N, 3))
    elif kind == "binary1":
        y = rng.integers(0, 2, size=(N, 1))
    elif kind == "binary3":
        y = rng.integers(0, 2, size=(N, 3))
    elif kind == "onehot3":
        y = np.eye(3)[rng.integers(0, 3, size=N)]
    elif kind == "labels3":
        y = rng.integers(0, 3, size=N)
    elif kind == "simplex3":
        y = rng.dirichlet(np.ones(3), size=N)
    elif kind == "counts3":
        y = rng.poisson(1.5, size=(N, 3))
    elif kind == "ctc":  # labels 1..3, 0 pads the end of a row
        lengths = rng.integers(1, S + 1, size=N)
        y = rng.integers(1, 4, size=(N, S)) * (np.arange(S) < lengths[:, None])
    else:
        raise ValueError(kind)
    return y.astype(np.float32)


def _data() -> tuple[dict, dict, np.ndarray]:
    rng = np.random.default_rng(SEED)
    x = {"flat": rng.normal(size=(N, 5)).astype(np.float32),
         "seq": rng.normal(size=(N, T, 5)).astype(np.float32)}
    y = {name: _targets(target, rng) for name, (_, _, target) in CASES.items()}
    sample_weight = rng.uniform(0.5, 1.5, size=N).astype(np.float32)
    return x, y, sample_weight


def _head(kind: str, flat: Any, seq: Any, name: str) -> Any:
    layers = keras.layers
    if kind == "ctc":
        return layers.Dense(4, name=name)(seq)
    if kind == "embedding":
        return layers.UnitNormalization(name=name)(layers.Dense(4, name=f"{name}_dense")(flat))
    units = 1 if kind.endswith("1") else 3
    activation = {"linear": None, "softplus": "softplus", "sigmoid": "sigmoid",
                  "softmax": "softmax"}[kind[:-1]]
    out = layers.Dense(units, activation=activation, name=f"{name}_dense")(flat)
    if activation in ("sigmoid", "softmax"):
        return layers.Rescaling(1.0, name=name)(out)  # hides the activation's logits (see top)
    return layers.Identity(name=name)(out)


def _model(names: list[str]) -> Any:
    keras.utils.set_random_seed(SEED)
    flat = keras.Input((5,), name="flat")
    seq = keras.Input((T, 5), name="seq")
    outputs = {n: _head(CASES[n][1], flat, seq, n) for n in names}
    return keras.Model({"flat": flat, "seq": seq}, outputs)


def _train(module: Any, names: list[str], class_weight: bool) -> dict:
    """Compile with ``module.<Name>`` losses, fit (sample_weight, then class_weight for a
    single output), evaluate; the initial weights depend only on ``SEED``."""
    x, y, sample_weight = _data()
    y = {n: y[n] for n in names}
    model = _model(names)
    losses = {n: getattr(module, n)(**CASES[n][0]) for n in names}
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss=losses, run_eagerly=False,
                  jit_compile=JIT)
    history = model.fit(x, y, sample_weight=sample_weight, batch_size=BATCH, epochs=1,
                        shuffle=False, verbose=0).history
    if class_weight:
        (name,) = names
        more = model.fit(x, y[name], class_weight=CLASS_WEIGHT, batch_size=BATCH, epochs=1,
                         shuffle=False, verbose=0).history
        history = {k: history[k] + more[k] for k in history}
    evaluated = model.evaluate(x, y, sample_weight=sample_weight, batch_size=BATCH, verbose=0,
                               return_dict=True)
    return {"weights": {w.path: np.asarray(w.numpy(), np.float64).tolist() for w in model.weights},
            "history": history, "evaluate": evaluated, "model": model}


def run_backend(names: list[str], class_weighted: list[str]) -> dict:
    """Train ``names`` (one model, one head each) and each of ``class_weighted`` (one model
    each) with the native and the polyloss losses on this process's Keras backend:
    ``{group: {"native": ..., "polyloss": ...}}``, JSON-ready."""
    groups = {"sample_weight": (names, False)}
    groups.update({f"class_weight:{n}": ([n], True) for n in class_weighted})
    out = {}
    for group, (group_names, class_weight) in groups.items():
        runs = {}
        for label, module in (("native", keras.losses), ("polyloss", pk)):
            keras.backend.clear_session()
            run = _train(module, group_names, class_weight)
            run.pop("model")
            runs[label] = run
        out[group] = runs
    return out


def _assert_same_training(results: dict, backend: str) -> None:
    assert results, "nothing was trained"
    for group, runs in results.items():
        native, ours = runs["native"], runs["polyloss"]
        assert native["weights"] and native["weights"].keys() == ours["weights"].keys()
        for path, w in native["weights"].items():
            np.testing.assert_allclose(ours["weights"][path], w, rtol=RTOL, atol=ATOL,
                                       err_msg=f"{backend} {group}: weight {path}")
        for what in ("history", "evaluate"):
            assert native[what].keys() == ours[what].keys()
            for key, value in native[what].items():
                np.testing.assert_allclose(ours[what][key], value, rtol=RTOL, atol=ATOL,
                                           err_msg=f"{backend} {group}: {what} {key}")


# The subprocess backends cover the special paths (ignore_class's mask, Circle's zero-loss
# mask, CTC, probabilities, Dice's whole-batch value) and a plain elementwise loss; the other
# families differ from these only in the per-sample function, which every backend shares and
# the TensorFlow run (all classes) covers. Each head costs the JAX run a compile.
SUBPROCESS_CASES = ["MeanSquaredError", "BinaryFocalCrossentropy", "SparseCategoricalCrossentropy", "Dice",
                    "Circle", "CTC"]


def _run_in_subprocess(backend: str, names: list[str], class_weighted: list[str]) -> dict:
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    args = json.dumps([names, class_weighted])
    proc = subprocess.run([sys.executable, str(Path(__file__)), args], env=env,
                          capture_output=True, text=True, timeout=240)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("POLYLOSS-RESULTS ")]
    assert proc.returncode == 0 and lines, proc.stderr[-4000:]
    return json.loads(lines[-1][len("POLYLOSS-RESULTS "):])


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_fit_and_evaluate_match_native(backend: str) -> None:
    """Weights after ``fit`` (2 steps with ``sample_weight``; 2 more with ``class_weight``),
    the history and ``evaluate`` equal the native losses' run. The backend this process runs
    (TensorFlow by default) trains every class at once; the others run in a subprocess."""
    pytest.importorskip({"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}[backend])
    if keras.backend.backend() == backend:
        results = run_backend(list(CASES), ["BinaryCrossentropy", "SparseCategoricalCrossentropy"])
    else:
        results = _run_in_subprocess(backend, SUBPROCESS_CASES, ["SparseCategoricalCrossentropy"])
    _assert_same_training(results, backend)


def test_save_and_load_model_round_trip(tmp_path: Path) -> None:
    """``model.save`` to a ``.keras`` file and ``keras.models.load_model`` give back the
    polyloss loss objects (registered as ``polyloss>Name``), with their config, and the
    same ``evaluate``. (Huber is left out: Keras's own ``Huber.get_config`` drops ``delta``,
    which polyloss reproduces, so a saved ``Huber(delta=0.5)`` loads as ``delta=1.0``.)"""
    names = ["MeanSquaredError", "SparseCategoricalCrossentropy", "Tversky", "Circle"]
    keras.backend.clear_session()
    model = _model(names)
    model.compile(optimizer=keras.optimizers.SGD(0.05), jit_compile=JIT,
                  loss={n: getattr(pk, n)(**CASES[n][0]) for n in names})
    x, y, sample_weight = _data()
    y = {n: y[n] for n in names}
    before = model.evaluate(x, y, sample_weight=sample_weight, batch_size=BATCH, verbose=0,
                            return_dict=True)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    for name in names:
        original, restored = model.loss[name], loaded.loss[name]
        assert type(restored) is getattr(pk, name)
        assert restored.get_config() == original.get_config()
    assert keras.saving.get_registered_name(pk.Circle) == "polyloss>Circle"
    after = loaded.evaluate(x, y, sample_weight=sample_weight, batch_size=BATCH, verbose=0,
                            return_dict=True)
    assert after == before
    assert before["loss"] > 0


CLASS_NAMES = [n for n in pk.__all__ if isinstance(getattr(pk, n), type) and n != "Loss"]


def test_every_class_is_trained() -> None:
    assert sorted(CASES) == sorted(CLASS_NAMES)


@pytest.mark.parametrize("name", CLASS_NAMES)
def test_config_round_trip_and_keras_identity(name: str) -> None:
    """Every class is a ``keras.losses.Loss`` whose config equals the native's (same keys and
    values; Keras leaves ``axis`` out of ``CosineSimilarity``'s, and so does polyloss) and
    survives ``from_config`` and ``keras.losses.serialize``/``deserialize``."""
    cls = getattr(pk, name)
    kwargs = CASES[name][0]
    ours = cls(**kwargs, reduction="sum", name="my_loss")
    assert isinstance(ours, keras.losses.Loss)
    config = ours.get_config()
    assert config == getattr(keras.losses, name)(**kwargs, reduction="sum", name="my_loss").get_config()
    assert cls.from_config(config).get_config() == config
    restored = keras.losses.deserialize(keras.losses.serialize(ours))
    assert type(restored) is cls and restored.get_config() == config


def test_tf_function_jit_compile() -> None:
    """Every class under ``tf.function(jit_compile=True)`` (XLA) equals the eager native."""
    tf = pytest.importorskip("tensorflow")
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the TensorFlow Keras backend runs in another process")
    rng = np.random.default_rng(SEED + 1)
    pairs = {}
    for name, (_, head, target) in CASES.items():
        y = _targets(target, rng)
        if head == "ctc":
            pred = rng.normal(size=(N, T, 4))
        elif head == "embedding":
            pred = rng.normal(size=(N, 4))
            pred /= np.linalg.norm(pred, axis=-1, keepdims=True)
        else:
            pred = rng.normal(size=(N, 1 if head.endswith("1") else 3))
            if head.startswith("softmax"):
                pred = np.exp(pred) / np.exp(pred).sum(-1, keepdims=True)
            elif head.startswith("sigmoid"):
                pred = 1 / (1 + np.exp(-pred))
            elif head.startswith("softplus"):
                pred = np.log1p(np.exp(pred))
        pairs[name] = (tf.constant(y), tf.constant(pred.astype(np.float32)))
    weight = tf.constant(rng.uniform(0.5, 1.5, size=N).astype(np.float32))
    ours = {n: getattr(pk, n)(**CASES[n][0]) for n in CASES}

    @tf.function(jit_compile=True)
    def all_losses(pairs: dict, weight: Any) -> dict:
        return {n: ours[n](y, p, sample_weight=weight) for n, (y, p) in pairs.items()}

    got = all_losses(pairs, weight)
    for name, (y, p) in pairs.items():
        expected = getattr(keras.losses, name)(**CASES[name][0])(y, p, sample_weight=weight)
        np.testing.assert_allclose(got[name].numpy(), expected.numpy(), rtol=RTOL, atol=ATOL,
                                   err_msg=name)
        assert got[name].numpy() != 0, name


def test_direct_calls_keep_the_callers_array_type() -> None:
    """Outside Keras's backend the polyloss path still runs: NumPy in, NumPy out."""
    rng = np.random.default_rng(SEED)
    y, p = rng.normal(size=(N, 3)), rng.normal(size=(N, 3))
    got = pk.MeanSquaredError()(y, p)
    assert isinstance(got, (np.ndarray, np.generic)) and got.dtype == np.float32
    expected = keras.losses.MeanSquaredError()(y, p)
    np.testing.assert_allclose(got, keras.ops.convert_to_numpy(expected), rtol=RTOL)
    on_backend = pk.MeanSquaredError()(keras.ops.convert_to_tensor(y), keras.ops.convert_to_tensor(p))
    assert keras.ops.is_tensor(on_backend)


if __name__ == "__main__":  # the subprocess worker: argv[1] = JSON [names, class_weighted]
    print("POLYLOSS-RESULTS " + json.dumps(run_backend(*json.loads(sys.argv[1]))))

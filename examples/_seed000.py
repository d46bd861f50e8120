"""Shared helper for seed 000's two training runs, written once per framework.

Seed 000 ("Types of Losses and Optimisation") trains, with Adam at lr 0.1:

* a linear regression ``y = 2x + 3 + 0.5·noise`` (500 points, ``x`` uniform on [0, 1), a column
  of ones for the bias) with MAE, MSE and Huber (delta 0.5), 200 epochs each;
* a logistic classifier on two Gaussian blobs (``make_blobs(n_samples=500, centers=2,
  cluster_std=2, random_state=42)``, plus a ones column) with binary cross-entropy and focal
  loss (gamma 5), 100 epochs each.

This module generates that data once, deterministically, in NumPy float64 (the blobs with the
algorithm of scikit-learn's ``make_blobs`` on ``numpy.random.RandomState(42)``, so no
scikit-learn is needed), draws the initial weights once per run, holds the five losses (each a
polyloss call, written once and run on whatever arrays a framework passes), computes the
metrics in NumPy from the weights each framework reports, and writes the figures.

A framework example supplies one function ``train(run, x, y, w0, epochs, eps)`` that returns
the loss per epoch and the weights before each epoch (and after the last one); everything else
is here. Adam's ``eps`` defaults to 0: torch and optax add epsilon to ``sqrt(v̂)`` while Keras
and MXNet add it to ``sqrt(v)`` (``ε̂ = ε·sqrt(1-β₂ᵗ)``); with ``eps = 0`` the four updates
are the same formula and the curves agree to rounding (see ``compare.py --eps``).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import polyloss

LR = 0.1
# Adam's default betas 0.9 and 0.999 rounded to float32 (0.89999998, 0.99900001): MXNet's adam
# kernel takes its hyperparameters as float32 while its bias correction is computed in double, and
# Keras casts the betas through float32 in its bias correction only; with exact 0.9/0.999 each of
# them is a slightly inconsistent Adam (first step 6.6e-6 relative off). With the float32 values
# every framework computes the same formula from the same numbers.
BETA1 = float(np.float32(0.9))
BETA2 = float(np.float32(0.999))
EPS = 0.0  # see the module docstring: the one value for which all four Adams are one formula
N_SAMPLES = 500
DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out")


@dataclass(frozen=True)
class Run:
    """One of seed 000's five training runs."""

    name: str
    task: str  # "regression" (prediction = x @ w) or "classification" (logit = x @ w)
    epochs: int
    loss: Callable[[Any, Any], Any]  # polyloss call on (prediction or logit, target), any backend
    title: str


RUNS: tuple[Run, ...] = (
    Run("mae", "regression", 200, lambda p, y: polyloss.mae(p, y), "MAE"),
    Run("mse", "regression", 200, lambda p, y: polyloss.mse(p, y), "MSE"),
    Run("huber", "regression", 200, lambda p, y: polyloss.huber(p, y, delta=0.5), "Huber (delta 0.5)"),
    Run("bce", "classification", 100,
        lambda z, y: polyloss.binary_cross_entropy(z, y, from_logits=True), "binary cross-entropy"),
    Run("focal", "classification", 100,
        lambda z, y: polyloss.focal(z, y, gamma=5.0, from_logits=True), "focal (gamma 5)"),
)
RUN_BY_NAME = {r.name: r for r in RUNS}


def regression_data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seed 000's regression data: ``x`` (500, 2) = [uniform[0,1), 1], ``y = 2x + 3 + 0.5·N(0,1)``."""
    rng = np.random.default_rng(seed)
    x = rng.random((N_SAMPLES, 1))
    y = 2.0 * x + 3.0 + rng.standard_normal((N_SAMPLES, 1)) * 0.5
    return np.concatenate([x, np.ones((N_SAMPLES, 1))], axis=1), y


def make_blobs_2(n_samples: int = N_SAMPLES, cluster_std: float = 2.0,
                 random_state: int = 42) -> tuple[np.ndarray, np.ndarray]:
    """Two 2-D Gaussian blobs, the algorithm of ``sklearn.datasets.make_blobs(centers=2)``.

    Centres uniform in the box [-10, 10]², ``n_samples // 2`` points per blob, then a shuffle,
    all drawn from one ``RandomState(random_state)`` in that order.
    """
    gen = np.random.RandomState(random_state)
    centers = gen.uniform(-10.0, 10.0, size=(2, 2))
    per_center = [n_samples // 2 + (1 if i < n_samples % 2 else 0) for i in range(2)]
    x = np.concatenate([gen.normal(loc=centers[i], scale=cluster_std, size=(n, 2))
                        for i, n in enumerate(per_center)])
    y = np.concatenate([np.full(n, i) for i, n in enumerate(per_center)])
    order = np.arange(n_samples)
    gen.shuffle(order)
    return x[order], y[order]


def classification_data() -> tuple[np.ndarray, np.ndarray]:
    """Seed 000's classification data: ``x`` (500, 3) = [blob x₁, blob x₂, 1], ``y`` (500, 1) in {0, 1}."""
    x, y = make_blobs_2()
    return (np.concatenate([x, np.ones((N_SAMPLES, 1))], axis=1),
            y.astype(np.float64).reshape(-1, 1))


def data(run: Run) -> tuple[np.ndarray, np.ndarray]:
    """The (x, y) of ``run``, float64, identical bits for every framework."""
    return regression_data() if run.task == "regression" else classification_data()


def initial_weights(run: Run) -> np.ndarray:
    """``w0`` of ``run``, standard normal (the seed's ``torch.randn(k, 1)``), seeded by the run's index."""
    k = 2 if run.task == "regression" else 3
    return np.random.default_rng(1000 + RUNS.index(run)).standard_normal((k, 1))


def metric(run: Run, x: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    """The seed's metric at weights ``w``: RMSE (regression) or accuracy at p > 0.5 (classification)."""
    z = x @ w
    if run.task == "regression":
        return float(np.sqrt(np.mean((y - z) ** 2)))
    return float(np.mean((z > 0.0) == (y > 0.5)))


@dataclass
class Result:
    """One framework's run: the loss per epoch (at the weights before that epoch's step) and weights."""

    framework: str
    run: str
    losses: list[float]
    weights: list[np.ndarray]  # epochs + 1 entries: before each step, then the final weights
    metrics: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def final_metric(self) -> float:
        """The metric at the weights after the last step."""
        return self.metrics[-1]


Trainer = Callable[[Run, np.ndarray, np.ndarray, np.ndarray, int, float],
                   tuple[Sequence[float], Sequence[Any]]]


def train_all(framework: str, train: Trainer, runs: Sequence[str] | None = None,
              epochs: int | None = None, eps: float = EPS) -> list[Result]:
    """Run ``train`` on each of seed 000's runs (all, or those named), ``epochs`` overriding the seed's."""
    results = []
    for run in RUNS:
        if runs is not None and run.name not in runs:
            continue
        x, y = data(run)
        n = run.epochs if epochs is None else epochs
        start = time.perf_counter()
        losses, weights = train(run, x, y, initial_weights(run), n, eps)
        seconds = time.perf_counter() - start
        ws = [np.asarray(w, dtype=np.float64).reshape(-1, 1) for w in weights]
        if len(losses) != n or len(ws) != n + 1:
            raise RuntimeError(f"{framework} {run.name}: expected {n} losses and {n + 1} weights")
        results.append(Result(framework, run.name, [float(v) for v in losses], ws,
                              [metric(run, x, y, w) for w in ws], seconds))
    return results


def adam_numpy(w: np.ndarray, grad: np.ndarray, m: np.ndarray, v: np.ndarray, t: int,
               eps: float = EPS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One Adam step (Kingma & Ba, torch/optax form: ``w -= lr·m̂/(sqrt(v̂)+eps)``), ``t`` from 1."""
    m = BETA1 * m + (1.0 - BETA1) * grad
    v = BETA2 * v + (1.0 - BETA2) * grad * grad
    m_hat = m / (1.0 - BETA1 ** t)
    v_hat = v / (1.0 - BETA2 ** t)
    return w - LR * m_hat / (np.sqrt(v_hat) + eps), m, v


def plot_results(results: Sequence[Result], out_dir: str) -> list[str]:
    """Write, per task present in ``results`` (regression: MAE/MSE/Huber; classification: BCE/focal),
    ``<framework>_<task>_fit.png`` (the data with each run's fitted or separating line, one panel per
    run) and ``<framework>_<task>_curves.png`` (loss and metric per epoch, one line per run).
    Returns the paths written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for task in ("regression", "classification"):
        group = [r for r in results if RUN_BY_NAME[r.run].task == task]
        if not group:
            continue
        framework = group[0].framework
        x, y = regression_data() if task == "regression" else classification_data()
        fig, axes = plt.subplots(1, len(group), figsize=(4.2 * len(group), 3.8), squeeze=False)
        for ax, res in zip(axes[0], group, strict=True):
            run = RUN_BY_NAME[res.run]
            w = res.weights[-1][:, 0]
            if task == "regression":
                order = np.argsort(x[:, 0])
                ax.scatter(x[:, 0], y[:, 0], s=5, alpha=0.4, label="data")
                ax.plot(x[order, 0], 2 * x[order, 0] + 3, color="green", label="true 2x + 3")
                ax.plot(x[order, 0], x[order] @ w, color="red", label=f"fit {w[0]:.2f}x + {w[1]:.2f}")
                ax.set_xlabel("x")
                ax.set_ylabel("y")
            else:
                cls = y[:, 0] > 0.5
                ax.scatter(x[~cls, 0], x[~cls, 1], s=5, color="red", label="class 0")
                ax.scatter(x[cls, 0], x[cls, 1], s=5, color="blue", label="class 1")
                xs = np.linspace(x[:, 0].min(), x[:, 0].max(), 2)
                ax.plot(xs, -(w[0] * xs + w[2]) / w[1], color="black", label="separating line")
                ax.set_ylim(x[:, 1].min() - 5, x[:, 1].max() + 5)
                ax.set_xlabel("x1")
                ax.set_ylabel("x2")
            ax.set_title(f"{run.title}: {'RMSE' if task == 'regression' else 'accuracy'} "
                         f"{res.final_metric:.4f}", fontsize=9)
            ax.legend(loc="best", fontsize=7)
        fig.suptitle(f"{framework}: seed 000 {task}")
        fig.tight_layout()
        paths.append(os.path.join(out_dir, f"{framework}_{task}_fit.png"))
        fig.savefig(paths[-1], dpi=80)
        plt.close(fig)

        fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.5))
        for res in group:
            a1.plot(np.arange(len(res.losses)), res.losses, label=RUN_BY_NAME[res.run].title)
            a2.plot(np.arange(len(res.metrics)), res.metrics, label=RUN_BY_NAME[res.run].title)
        a1.set_ylabel("loss")
        a1.set_yscale("log")
        a2.set_ylabel("RMSE" if task == "regression" else "accuracy")
        for a in (a1, a2):
            a.set_xlabel("epoch")
            a.set_title(f"{a.get_ylabel()} per epoch")
            a.legend(fontsize=7)
        fig.suptitle(f"{framework}: seed 000 {task}, Adam lr {LR:g}")
        fig.tight_layout()
        paths.append(os.path.join(out_dir, f"{framework}_{task}_curves.png"))
        fig.savefig(paths[-1], dpi=80)
        plt.close(fig)
    return paths


def summary(results: Sequence[Result]) -> str:
    """One line per run: final loss and the seed's metric after the last step."""
    lines = []
    for res in results:
        run = RUN_BY_NAME[res.run]
        name = "RMSE" if run.task == "regression" else "accuracy"
        lines.append(f"{res.framework:10} {res.run:6} epochs {len(res.losses):4}  final loss "
                     f"{res.losses[-1]:.6f}  {name} {res.final_metric:.4f}  ({res.seconds:.2f} s)")
    return "\n".join(lines)


def main(framework: str, train: Trainer, argv: Sequence[str] | None = None) -> int:
    """Command line of every example: train the seed's runs, print the results, write the figures."""
    parser = argparse.ArgumentParser(description=f"Seed 000's training runs on {framework} with polyloss.")
    parser.add_argument("out", nargs="?", default=DEFAULT_OUT, help="output directory (default: %(default)s)")
    parser.add_argument("--epochs", type=int,
                        help="override the seed's epochs (200 regression, 100 classification)")
    parser.add_argument("--run", action="append", choices=[r.name for r in RUNS],
                        help="only this run (repeatable)")
    parser.add_argument("--eps", type=float, default=EPS, help="Adam epsilon (default: %(default)s)")
    args = parser.parse_args(argv)
    results = train_all(framework, train, args.run, args.epochs, args.eps)
    print(summary(results))
    paths = plot_results(results, args.out)
    with open(os.path.join(args.out, f"{framework}_losses.json"), "w") as f:
        json.dump({r.run: {"loss": r.losses, "metric": r.metrics} for r in results}, f)
    print(f"wrote {len(paths)} figures and {framework}_losses.json to {args.out}")
    return 0

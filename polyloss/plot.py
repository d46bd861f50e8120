"""Loss-versus-prediction curves, under any convention, for ``polyloss plot``.

Like seed 003's ``show_regression_loss`` / ``show_classification_loss``: one prediction varies
over a range while the target is fixed (0 for regression losses, 1 for classification losses),
and the per-element loss is drawn. Several conventions can be overlaid on one figure (for
example binary cross-entropy under torch, Keras and Gluon near p = 0, where torch floors the
log at -100, Keras clips p to [1e-7, 1 - 1e-7] and Gluon adds 1e-12 inside the log). Seed 000's
focal / cross-entropy ratio figure is :func:`plot_focal_ratio`.

The curves are computed with polyloss's canonical losses and convention mirrors on NumPy
float64 arrays, so no framework is needed; matplotlib is imported only when a figure is drawn
(the ``plot`` extra: ``pip install polyloss[plot]``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

import polyloss

Curve = Callable[[np.ndarray, np.ndarray], Any]  # (pred (n, 1), target (n, 1)) -> per-element loss


@dataclass(frozen=True)
class PlotLoss:
    """A loss that ``polyloss plot`` can draw: what its x axis is, and its call per convention."""

    name: str
    x: str  # "residual" (pred - target), "probability" or "logit"
    target: float
    lo: float
    hi: float
    doc: str
    conventions: dict[str, Callable[[dict[str, float]], Curve]]


def _torch() -> Any:
    import polyloss.torch as m

    return m


def _keras() -> Any:
    import polyloss.keras as m

    return m


def _gluon() -> Any:
    import polyloss.gluon as m

    return m


def _optax() -> Any:
    import polyloss.optax as m

    return m


_PROB = (1e-4, 1.0 - 1e-4)

LOSSES: dict[str, PlotLoss] = {loss.name: loss for loss in (
    PlotLoss("mae", "residual", 0.0, -5.0, 5.0, "mean absolute error |p - y|", {
        "polyloss": lambda k: lambda p, y: polyloss.mae(p, y, reduction="none"),
        "torch": lambda k: lambda p, y: _torch().L1Loss(reduction="none")(p, y),
        "keras": lambda k: lambda p, y: _keras().mean_absolute_error(y, p),
        "gluon": lambda k: lambda p, y: _gluon().L1Loss()(p, y),
    }),
    PlotLoss("mse", "residual", 0.0, -5.0, 5.0,
             "squared error (p - y)²; Gluon's L2Loss and optax's l2_loss halve it", {
        "polyloss": lambda k: lambda p, y: polyloss.mse(p, y, reduction="none"),
        "torch": lambda k: lambda p, y: _torch().MSELoss(reduction="none")(p, y),
        "keras": lambda k: lambda p, y: _keras().mean_squared_error(y, p),
        "gluon": lambda k: lambda p, y: _gluon().L2Loss()(p, y),
        "optax": lambda k: lambda p, y: _optax().l2_loss(p, y),
    }),
    PlotLoss("huber", "residual", 0.0, -5.0, 5.0,
             "Huber with --delta; Gluon's HuberLoss(rho) is huber / rho", {
        "polyloss": lambda k: lambda p, y: polyloss.huber(p, y, delta=k["delta"], reduction="none"),
        "torch": lambda k: lambda p, y: _torch().HuberLoss(reduction="none", delta=k["delta"])(p, y),
        "keras": lambda k: lambda p, y: _keras().huber(y, p, delta=k["delta"]),
        "gluon": lambda k: lambda p, y: _gluon().HuberLoss(rho=k["delta"])(p, y),
        "optax": lambda k: lambda p, y: _optax().huber_loss(p, y, delta=k["delta"]),
    }),
    PlotLoss("log_cosh", "residual", 0.0, -5.0, 5.0, "log(cosh(p - y))", {
        "polyloss": lambda k: lambda p, y: polyloss.log_cosh(p, y, reduction="none"),
        "keras": lambda k: lambda p, y: _keras().log_cosh(y, p),
        "optax": lambda k: lambda p, y: _optax().log_cosh(p, y),
    }),
    PlotLoss("bce", "probability", 1.0, *_PROB,
             "binary cross-entropy on probabilities (each framework's clamp)", {
        "polyloss": lambda k: lambda p, y: polyloss.binary_cross_entropy(p, y, reduction="none"),
        "torch": lambda k: lambda p, y: _torch().BCELoss(reduction="none")(p, y),
        "keras": lambda k: lambda p, y: _keras().binary_crossentropy(y, p),
        "gluon": lambda k: lambda p, y: _gluon().SigmoidBinaryCrossEntropyLoss(from_sigmoid=True)(p, y),
    }),
    PlotLoss("bce_logits", "logit", 1.0, -5.0, 5.0, "binary cross-entropy on logits", {
        "polyloss": lambda k: lambda z, y: polyloss.binary_cross_entropy(z, y, from_logits=True,
                                                                       reduction="none"),
        "torch": lambda k: lambda z, y: _torch().BCEWithLogitsLoss(reduction="none")(z, y),
        "keras": lambda k: lambda z, y: _keras().binary_crossentropy(y, z, from_logits=True),
        "gluon": lambda k: lambda z, y: _gluon().SigmoidBinaryCrossEntropyLoss()(z, y),
        "optax": lambda k: lambda z, y: _optax().sigmoid_binary_cross_entropy(z, y),
    }),
    PlotLoss("focal", "logit", 1.0, -5.0, 5.0,
             "binary focal loss with --gamma on logits (torchvision's alpha 0.25 under torch)", {
        "polyloss": lambda k: lambda z, y: polyloss.focal(z, y, gamma=k["gamma"], reduction="none"),
        "torch": lambda k: lambda z, y: _torch().sigmoid_focal_loss(z, y, gamma=k["gamma"]),
        "keras": lambda k: lambda z, y: _keras().binary_focal_crossentropy(y, z, gamma=k["gamma"],
                                                                         from_logits=True),
        "optax": lambda k: lambda z, y: _optax().sigmoid_focal_loss(z, y, gamma=k["gamma"]),
    }),
    PlotLoss("hinge", "logit", 1.0, -5.0, 5.0, "hinge max(0, 1 - y·z) with y = 1", {
        "polyloss": lambda k: lambda z, y: polyloss.hinge(z, y, reduction="none"),
        "keras": lambda k: lambda z, y: _keras().hinge(y, z),
        "gluon": lambda k: lambda z, y: _gluon().HingeLoss()(z, y),
        "optax": lambda k: lambda z, y: _optax().hinge_loss(z[:, 0], y[:, 0]),
    }),
    PlotLoss("logistic", "logit", 1.0, -5.0, 5.0, "logistic / soft margin log(1 + exp(-y·z)) with y = 1", {
        "polyloss": lambda k: lambda z, y: polyloss.soft_margin(z, y, reduction="none"),
        "torch": lambda k: lambda z, y: _torch().SoftMarginLoss(reduction="none")(z, y),
        "gluon": lambda k: lambda z, y: _gluon().LogisticLoss()(z, y),
    }),
)}

CONVENTIONS = ("polyloss", "torch", "keras", "gluon", "optax")


def curves(loss: str, conventions: Sequence[str] = ("polyloss",), *, lo: float | None = None,
           hi: float | None = None, points: int = 401, logx: bool = False, target: float | None = None,
           delta: float = 1.0, gamma: float = 2.0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The x values and, per convention, the per-element loss at each x (target fixed).

    x runs from ``lo`` to ``hi`` (the loss's defaults when None), evenly, or evenly in log
    space with ``logx``; regression losses are evaluated at ``pred = target + x``.
    """
    spec = LOSSES[loss]
    unknown = [c for c in conventions if c not in spec.conventions]
    if unknown:
        raise ValueError(f"{loss} has no {', '.join(unknown)} convention "
                         f"(has: {', '.join(spec.conventions)})")
    lo = spec.lo if lo is None else lo
    hi = spec.hi if hi is None else hi
    if not lo < hi:
        raise ValueError(f"empty range [{lo}, {hi}]")
    if logx and lo <= 0:
        raise ValueError("--logx needs a positive range")
    x = np.geomspace(lo, hi, points) if logx else np.linspace(lo, hi, points)
    y0 = spec.target if target is None else float(target)
    pred = (x + y0 if spec.x == "residual" else x).reshape(-1, 1)
    tgt = np.full_like(pred, y0)
    params = {"delta": float(delta), "gamma": float(gamma)}
    out = {}
    for conv in conventions:
        values = np.asarray(spec.conventions[conv](params)(pred, tgt), dtype=np.float64).reshape(-1)
        if values.shape != x.shape:
            raise RuntimeError(f"{loss} under {conv} returned {values.shape}, not one value per point")
        out[conv] = values
    return x, out


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("polyloss plot needs matplotlib: pip install 'polyloss[plot]'") from e
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_loss(loss: str, conventions: Sequence[str], out: str, *, logy: bool = False,
              logx: bool = False, **kwargs: Any) -> str:
    """Draw :func:`curves` of ``loss`` (one line per convention) and save it as PNG at ``out``."""
    x, ys = curves(loss, conventions, logx=logx, **kwargs)
    spec = LOSSES[loss]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    styles = ("-", "--", "-.", ":", (0, (5, 1)))
    for i, (conv, y) in enumerate(ys.items()):
        ax.plot(x, y, linestyle=styles[i % len(styles)], linewidth=2 if i == 0 else 1.6, label=conv)
    target = spec.target if kwargs.get("target") is None else kwargs["target"]
    xlabel = {"residual": f"prediction - target (target = {target:g})",
              "probability": f"predicted probability p (target = {target:g})",
              "logit": f"logit z (target = {target:g})"}[spec.x]
    ax.set_xlabel(xlabel)
    ax.set_ylabel("loss per element")
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set_title(f"{loss}: {spec.doc}", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


FOCAL_GAMMAS = (0.0, 0.5, 1.0, 2.0, 5.0, 10.0)


def focal_ratio(gammas: Sequence[float] = FOCAL_GAMMAS) -> tuple[np.ndarray, dict[float, np.ndarray]]:
    """Seed 000's ratio focal / cross-entropy at ``p = 0.01, 0.02, …, 0.99`` (target 1), per gamma.

    Both from polyloss on probabilities: ``polyloss.focal(p, 1, gamma, from_logits=False)`` over
    ``polyloss.binary_cross_entropy(p, 1)``; analytically ``(1 - p)^gamma``.
    """
    p = (np.arange(1, 100) / 100.0).reshape(-1, 1)
    y = np.ones_like(p)
    ce = np.asarray(polyloss.binary_cross_entropy(p, y, reduction="none"))
    return p[:, 0], {g: (np.asarray(polyloss.focal(p, y, gamma=g, from_logits=False, reduction="none"))
                         / ce)[:, 0] for g in gammas}


def plot_focal_ratio(out: str, gammas: Sequence[float] = FOCAL_GAMMAS) -> str:
    """Seed 000's two panels, focal / cross-entropy and log(cross-entropy / focal) against p, as PNG."""
    p, ratios = focal_ratio(gammas)
    plt = _pyplot()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    for g, r in ratios.items():
        a1.plot(p, r, label=f"gamma={g:g}")
        a2.plot(p, np.log(1.0 / r), label=f"gamma={g:g}")
    a1.set_title("Focal Loss / Cross Entropy")
    a1.set_ylabel("Focal Loss / Cross Entropy")
    a2.set_title("log(Cross Entropy / Focal Loss)")
    a2.set_ylabel("log(Cross Entropy / Focal Loss)")
    for a in (a1, a2):
        a.set_xlabel("p (probability of the true class)")
        a.grid(alpha=0.3)
        a.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def describe() -> str:
    """The losses ``polyloss plot --loss`` knows, their x axis and conventions (for ``--list``)."""
    return "\n".join(f"{s.name:11} x = {s.x:11} target {s.target:g}  conventions: {', '.join(s.conventions)}"
                     f"\n{'':11} {s.doc}" for s in LOSSES.values())

"""Run seed 000's training on every installed framework and check that the loss curves agree.

Each framework's example (``seed000_<framework>.py``) trains from the same data and initial
weights with its own Adam; the loss at every epoch is compared with NumPy's (hand-written
gradient and Adam, the reference) as ``|a - b| / max(|a|, |b|)``. Exit status 0 when every
epoch of every run agrees to ``--rtol`` (default 1e-5).

``python examples/compare.py [--epochs N] [--eps E] [--framework NAME ...]``. With Adam's
``--eps`` other than 0 the curves split by epsilon placement (torch/optax add it to
``sqrt(v̂)``, Keras/MXNet to ``sqrt(v)``), which this script then shows.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from types import ModuleType

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _seed000 as seed  # noqa: E402

FRAMEWORKS = ("numpy", "torch", "jax", "keras", "gluon")
#: what each example needs importable, to tell "not installed" from a broken example
REQUIRES = {"numpy": ("numpy",), "torch": ("torch",), "jax": ("jax", "optax"),
            "keras": ("tensorflow", "keras"), "gluon": ("polyloss.backends.mxnet",)}


def load(framework: str) -> ModuleType | None:
    """The example module of ``framework``, or None when that framework is not installed."""
    for name in REQUIRES[framework]:
        try:
            importlib.import_module(name)
        except ImportError:
            return None
    return importlib.import_module(f"seed000_{framework}")


def rel_diff(a: float, b: float) -> float:
    """``|a - b| / max(|a|, |b|)``, 0 when both are 0."""
    scale = max(abs(a), abs(b))
    return 0.0 if scale == 0 else abs(a - b) / scale


def run_all(frameworks: Sequence[str] = FRAMEWORKS, epochs: int | None = None, eps: float = seed.EPS,
            runs: Sequence[str] | None = None) -> dict[str, list[seed.Result]]:
    """Train every available framework in ``frameworks``; {framework: results}, missing ones left out."""
    out = {}
    for fw in frameworks:
        module = load(fw)
        if module is not None:
            out[fw] = seed.train_all(fw, module.train, runs, epochs, eps)
    return out


def max_rel_diffs(results: dict[str, list[seed.Result]],
                  reference: str = "numpy") -> dict[tuple[str, str], float]:
    """{(framework, run): worst relative difference over epochs of its loss curve vs ``reference``}."""
    ref = {r.run: r for r in results[reference]}
    return {(fw, r.run): max(rel_diff(a, b) for a, b in zip(r.losses, ref[r.run].losses, strict=True))
            for fw, rs in results.items() if fw != reference for r in rs}


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: train, print the final metrics and the per-run worst relative differences."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, help="override the seed's epochs")
    parser.add_argument("--eps", type=float, default=seed.EPS, help="Adam epsilon (default %(default)s)")
    parser.add_argument("--rtol", type=float, default=1e-5, help="relative tolerance per epoch")
    parser.add_argument("--framework", action="append", choices=FRAMEWORKS,
                        help="only this framework (repeatable; numpy, the reference, always runs)")
    args = parser.parse_args(argv)
    wanted = ["numpy"] + [f for f in (args.framework or FRAMEWORKS) if f != "numpy"]
    results = run_all(wanted, args.epochs, args.eps)
    missing = [f for f in wanted if f not in results]
    for rs in results.values():
        print(seed.summary(rs))
    if missing:
        print(f"not installed, skipped: {', '.join(missing)}")
    diffs = max_rel_diffs(results)
    print(f"\nworst relative difference of the loss per epoch vs numpy "
          f"(rtol {args.rtol:g}, Adam eps {args.eps:g}):")
    for run in seed.RUNS:
        cells = [f"{fw} {diffs[(fw, run.name)]:.1e}" for fw in results if (fw, run.name) in diffs]
        print(f"  {run.name:6} " + "  ".join(cells))
    worst = max(diffs.values(), default=0.0)
    print(f"max {worst:.2e}: " + ("all curves agree" if worst <= args.rtol else "DISAGREE"))
    return 0 if worst <= args.rtol else 1


if __name__ == "__main__":
    sys.exit(main())

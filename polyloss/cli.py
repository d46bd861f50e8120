"""The ``polyloss`` command.

``polyloss parity``: every loss and mirror on every installed backend, against the NumPy
float64 oracle (canonical losses) or the framework's real native loss (mirrors), values and
gradients, as a table; exit status 0 only when every cell is within tolerance.
``polyloss bench``: polyloss's time as a ratio of the native loss's, measured in one process.
``polyloss plot``: loss-versus-prediction curves under one or more conventions, or seed 000's
focal / cross-entropy ratio figure, saved as PNG (needs matplotlib: the ``plot`` extra).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict

from polyloss.parity.cases import CONVENTIONS


def _fmt(err: float | None) -> str:
    if err is None:
        return "-"
    if err == 0:
        return "0"
    if err == float("inf"):
        return "inf"
    return f"{err:.0e}"


def _progress(i: int, n: int) -> None:
    if not sys.stderr.isatty():
        return
    width = 30
    done = int(width * i / max(n, 1))
    sys.stderr.write(f"\r[{'#' * done}{'.' * (width - done)}] {i}/{n}")
    if i == n:
        sys.stderr.write("\r" + " " * (width + 20) + "\r")
    sys.stderr.flush()


def parity(args: argparse.Namespace) -> int:
    from polyloss.parity import run as runner
    from polyloss.parity.backends import available_backends

    start = time.perf_counter()
    dtypes = tuple(args.dtype) if args.dtype else ("float32", "float64")
    results = runner.run(args.backend, args.convention, args.loss, dtypes, progress=_progress)
    elapsed = time.perf_counter() - start
    backends = [b.name for b in available_backends(args.backend)]
    failures = [r for r in results if not r.ok]

    if args.json:
        print(json.dumps({
            "backends": backends,
            "seconds": round(elapsed, 2),
            "cases": len(results),
            "failures": len(failures),
            "results": [
                {
                    "convention": r.case.convention, "loss": r.case.label, "family": r.case.family,
                    "backend": r.backend, "dtype": r.dtype, "input": r.edge,
                    "reference": r.reference, "value_err": r.value_err, "grad_err": r.grad_err,
                    "tol": r.tol, "ok": r.ok, "note": r.note,
                }
                for r in results
            ],
        }, indent=1, default=str))
        return 1 if failures else 0

    # one row per case: the worst relative error per backend over dtypes and inputs
    worst: dict = defaultdict(lambda: defaultdict(lambda: [0.0, None, True]))
    order: list = []
    for r in results:
        key = (r.case.convention, r.case.label, r.reference)
        if key not in worst:
            order.append(key)
        cell = worst[key][r.backend]
        cell[0] = max(cell[0], r.value_err / r.tol if r.tol else r.value_err)
        if r.grad_err is not None:
            g = r.grad_err / r.tol if r.tol else r.grad_err
            cell[1] = g if cell[1] is None else max(cell[1], g)
        cell[2] = cell[2] and r.ok
    label_width = min(64, max((len(k[1]) for k in order), default=10))
    header = f"{'convention':10} {'loss':{label_width}} {'vs':6} " + " ".join(
        f"{b:>16}" for b in backends)
    print("Worst error per backend over float32/float64 and edge inputs, as a fraction of the "
          "tolerance (value / gradient; <= 1 passes; 0 = bit-identical)")
    print(header)
    print("-" * len(header))
    for key in order:
        conv, label, ref = key
        cells = []
        for b in backends:
            if b not in worst[key]:
                cells.append(f"{'n/a':>16}")
                continue
            v, g, ok = worst[key][b]
            text = f"{_fmt(v)} / {_fmt(g)}" + ("" if ok else " FAIL")
            cells.append(f"{text:>16}")
        print(f"{conv:10} {label[:label_width]:{label_width}} {ref:6} " + " ".join(cells))
    per_backend = defaultdict(int)
    for r in results:
        per_backend[r.backend] += 1
    print()
    print("Parity cases run per backend: " + ", ".join(
        f"{b} {per_backend[b]}" for b in backends) + f" (total {len(results)}, {elapsed:.1f} s)")
    if failures:
        print(f"\n{len(failures)} cell(s) out of tolerance:")
        for r in failures[:50]:
            print(f"  {r.case.convention} {r.case.label} on {r.backend} {r.dtype} [{r.edge}] "
                  f"vs {r.reference}: value {_fmt(r.value_err)}, grad {_fmt(r.grad_err)}, "
                  f"tol {r.tol:.0e} {r.note}")
        return 1
    print("All cells within tolerance.")
    return 0


def bench(args: argparse.Namespace) -> int:
    from polyloss import bench as benchmarks

    timings, machine = benchmarks.run(args.loss, repeats=args.repeats)
    if args.json:
        print(json.dumps({"machine": machine, "results": [
            {"family": t.benchmark.family, "backend": t.benchmark.backend, "label": t.benchmark.label,
             "native_s": t.native_s, "polyloss_s": t.polyloss_s,
             "ratio": {k: t.ratio(k) for k in t.polyloss_s}}
            for t in timings]}, indent=1))
        return 0
    print(f"Median time, polyloss / native (same process, interleaved; threads {machine['threads']})")
    for t in timings:
        print(f"{t.benchmark.family:8} {t.benchmark.backend:10} {t.benchmark.label}")
        print(f"{'':19} native {t.native_s * 1e3:9.2f} ms")
        for name, seconds in t.polyloss_s.items():
            print(f"{'':19} {name:>6} {seconds * 1e3:9.2f} ms   ratio {t.ratio(name):5.2f}")
    if not timings:
        print("no benchmark ran (is the framework installed?)")
    return 0


def plot(args: argparse.Namespace) -> int:
    """``polyloss plot``: draw the requested figure (matplotlib imported only here, lazily)."""
    from polyloss import plot as plots

    if args.list:
        print(plots.describe())
        return 0
    if not args.out:
        print("polyloss plot: --out FILE.png is required", file=sys.stderr)
        return 2
    if args.seed000_focal_ratio:
        path = plots.plot_focal_ratio(args.out)
    else:
        lo, hi = args.range if args.range else (None, None)
        try:
            path = plots.plot_loss(args.loss, args.convention or ["polyloss"], args.out, lo=lo, hi=hi,
                                   points=args.points, logx=args.logx, logy=args.logy, target=args.target,
                                   delta=args.delta, gamma=args.gamma)
        except ValueError as e:
            print(f"polyloss plot: {e}", file=sys.stderr)
            return 2
    print(f"wrote {path}")
    return 0


_PLOT_EPILOG = """examples:
  polyloss plot --loss huber --delta 0.5 --convention polyloss --convention gluon --out huber.png
  polyloss plot --loss bce --convention torch --convention keras --convention gluon \\
                --range 1e-20 1 --logx --out bce.png
  polyloss plot --seed000-focal-ratio --out ratio.png
  polyloss plot --list
The curve is the per-element loss of one prediction against a fixed target (0 for regression
losses, where x is prediction - target; 1 for classification losses, where x is the probability
or the logit), computed with polyloss's mirrors of each convention on NumPy float64."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="polyloss", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("parity", help="check every loss on every installed backend")
    p.add_argument("--backend", action="append", help="only this backend (repeatable)")
    p.add_argument("--convention", action="append", choices=CONVENTIONS,
                   help="only this convention (repeatable)")
    p.add_argument("--loss", action="append", help="only this loss family, e.g. huber")
    p.add_argument("--dtype", action="append", choices=("float32", "float64"))
    p.add_argument("--json", action="store_true", help="print every cell as JSON")
    p.set_defaults(func=parity)
    b = sub.add_parser("bench", help="time polyloss against the native losses")
    b.add_argument("--loss", action="append", help="only this loss family, e.g. ctc")
    b.add_argument("--repeats", type=int, default=7, help="interleaved rounds (median)")
    b.add_argument("--json", action="store_true")
    b.set_defaults(func=bench)
    from polyloss.plot import CONVENTIONS as PLOT_CONVENTIONS
    from polyloss.plot import LOSSES as PLOT_LOSSES

    pl = sub.add_parser("plot", help="draw loss curves (PNG)", epilog=_PLOT_EPILOG,
                        formatter_class=argparse.RawDescriptionHelpFormatter,
                        description="Draw the loss-versus-prediction curve of a loss under one or more "
                                    "conventions (overlaid), or seed 000's focal/cross-entropy ratio.")
    what = pl.add_mutually_exclusive_group(required=True)
    what.add_argument("--loss", choices=sorted(PLOT_LOSSES), help="the loss to draw")
    what.add_argument("--seed000-focal-ratio", action="store_true",
                      help="seed 000's focal / cross-entropy ratio for gamma 0, 0.5, 1, 2, 5, 10")
    what.add_argument("--list", action="store_true", help="list the losses and their conventions")
    pl.add_argument("--convention", action="append", choices=PLOT_CONVENTIONS,
                    help="draw under this convention (repeatable: overlaid; default polyloss)")
    pl.add_argument("--out", metavar="FILE.png", help="where to save the figure (required)")
    pl.add_argument("--range", nargs=2, type=float, metavar=("LO", "HI"),
                    help="x range (default: -5 5 for residuals and logits, 1e-4 1-1e-4 for probabilities)")
    pl.add_argument("--points", type=int, default=401, help="points on the curve (default %(default)s)")
    pl.add_argument("--logx", action="store_true", help="logarithmic x axis (positive range)")
    pl.add_argument("--logy", action="store_true", help="logarithmic y axis")
    pl.add_argument("--target", type=float, help="the fixed target (default 0 regression, 1 classification)")
    pl.add_argument("--delta", type=float, default=1.0, help="huber's delta (default %(default)s)")
    pl.add_argument("--gamma", type=float, default=2.0, help="focal's gamma (default %(default)s)")
    pl.set_defaults(func=plot)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

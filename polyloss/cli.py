"""The ``polyloss`` command.

``polyloss parity``: every loss and mirror on every installed backend, against the NumPy
float64 oracle (canonical losses) or the framework's real native loss (mirrors), values and
gradients, as a table; exit status 0 only when every cell is within tolerance.
``polyloss bench``: polyloss's time and peak memory as ratios of the native loss's, per backend,
interleaved, judged against the performance targets (docs/performance.md).
``polyloss plot``: loss-versus-prediction curves under one or more conventions, or seed 000's
focal / cross-entropy ratio figure, saved as PNG (needs matplotlib: the ``plot`` extra).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict

from polyloss.bench.registry import BACKENDS as BENCH_BACKENDS
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
    """``polyloss bench``: time (and size) polyloss against the natives; see docs/performance.md."""
    from polyloss.bench import report as reports
    from polyloss.bench import runner, targets

    def log(text: str) -> None:
        if not args.quiet:
            print(f"polyloss bench: {text}", file=sys.stderr, flush=True)

    if args.from_json:
        with open(args.from_json) as f:
            result = json.load(f)
    else:
        modes = args.mode or []
        passes = tuple(m for m in runner.PASSES if m in modes) or None
        execs = tuple(m for m in runner.EXECS if m in modes) or None
        settings = {k: v for k, v in {
            "backends": args.backend or [], "families": args.family or [], "sizes": args.size or [],
            "passes": passes, "execs": execs, "threads": args.threads, "repeats": args.repeats,
            "min_time": None if args.min_time_ms is None else args.min_time_ms / 1e3, "memory": args.memory,
            "malloc_tuned": args.malloc_tuned or None, "timeout": args.timeout,
            "check_only": args.check_only or None}.items() if v is not None}
        cfg = runner.Config.quick_config(**settings) if args.quick else runner.Config(**settings)
        try:
            result = runner.run(cfg, log=log)
        except ValueError as e:
            print(str(e), file=sys.stderr)
            return 2
    targets.judge(result)
    if args.write_results:
        command = "polyloss bench"
        if sys.argv[1:2] == ["bench"]:
            command += " " + " ".join(sys.argv[2:])
        for path in reports.write_results(result, args.write_results, command):
            log(f"wrote {path}")
    if args.json:
        print(reports.to_json(result))
    elif args.csv:
        print(reports.to_csv(result), end="")
    else:
        print(reports.table(result))
    summary = result["summary"]
    return 1 if summary["errors"] or summary["value_check_problems"] else 0


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


def port(args: argparse.Namespace) -> int:
    """``polyloss port``: a loss call written in every other convention (polyloss/porting)."""
    from polyloss.porting.text import run

    return run(args)


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
    b = sub.add_parser(
        "bench", help="time polyloss against the native losses",
        description="Time polyloss (canonical API and the framework's own mirror) against each framework's "
                    "native losses, forward and forward+backward, eager and compiled, interleaved, in one "
                    "process per framework; peak memory of cross-entropy 4096x1000; each cell judged against "
                    "the performance targets. See docs/performance.md.")
    b.add_argument("--family", "--loss", action="append", help="only this loss family (repeatable), e.g. ce")
    b.add_argument("--backend", action="append", choices=BENCH_BACKENDS,
                   help="only this backend (repeatable)")
    b.add_argument("--size", action="append",
                   help="only this size (repeatable): a name such as 4096x1000 or a batch such as 8")
    b.add_argument("--mode", action="append", choices=("fwd", "fwd+bwd", "eager", "compiled"),
                   help="only this pass or execution mode (repeatable; default all)")
    b.add_argument("--quick", action="store_true",
                   help="a small, fast run: the first size of each family, eager, 3 short repeats, no memory")
    b.add_argument("--check-only", action="store_true",
                   help="only build every cell and check that each side computes its native's value")
    b.add_argument("--threads", type=int, help="threads per framework (default 2)")
    b.add_argument("--repeats", type=int, help="interleaved repeats per cell (default 7; --quick 3)")
    b.add_argument("--min-time-ms", type=float,
                   help="minimum time per repeat and side (default 25; --quick 2)")
    b.add_argument("--memory", action=argparse.BooleanOptionalAction, default=None,
                   help="measure peak memory of cross-entropy 4096x1000 (default on; off with --quick)")
    b.add_argument("--malloc-tuned", action="store_true",
                   help="timing workers get MALLOC_MMAP_THRESHOLD_=32MiB MALLOC_TRIM_THRESHOLD_=1GiB")
    b.add_argument("--timeout", type=float, help="seconds per worker process (default 1800)")
    out = b.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print the full report as JSON instead of the table")
    out.add_argument("--csv", action="store_true", help="print every measurement as CSV instead of the table")
    b.add_argument("--write-results", metavar="PATH.md",
                   help="write the results file (Markdown) and the same report as JSON next to it")
    b.add_argument("--from-json", metavar="FILE", help="re-render a saved JSON report instead of measuring")
    b.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
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
    from polyloss.porting.text import add_arguments as add_port_arguments

    po = sub.add_parser("port", help="a loss call in every other framework's API",
                        description="Print the equivalent of a loss call in each target framework's "
                                    "native API, the polyloss mirror that reproduces it exactly, and "
                                    "what cannot be expressed natively; --check measures the "
                                    "differences on random inputs. See docs/porting.md.")
    add_port_arguments(po)
    po.set_defaults(func=port)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

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
import sys
import time

from polyloss.bench.registry import BACKENDS as BENCH_BACKENDS
from polyloss.parity.backends import BACKENDS as PARITY_BACKENDS
from polyloss.parity.cases import CONVENTIONS
from polyloss.parity.run import DEVICES as PARITY_DEVICES
from polyloss.parity.run import DTYPES as PARITY_DTYPES


class _Progress:
    """A progress bar on stderr: redrawn in place on a terminal; elsewhere (CI logs) one line at
    every tenth of the work."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.start = time.perf_counter()
        self.shown = -1

    def __call__(self, i: int, n: int) -> None:
        if not self.enabled or n == 0:
            return
        elapsed = time.perf_counter() - self.start
        if self.tty:
            width = 30
            done = int(width * i / n)
            sys.stderr.write(f"\r[{'#' * done}{'.' * (width - done)}] {i}/{n} tasks, {elapsed:.0f} s ")
            if i == n:
                sys.stderr.write("\r" + " " * (width + 60) + "\r")
        else:
            tenth = 10 * i // n
            if tenth == self.shown:
                return
            self.shown = tenth
            sys.stderr.write(f"polyloss parity: {i}/{n} tasks ({100 * i // n}%), {elapsed:.0f} s\n")
        sys.stderr.flush()


def parity(args: argparse.Namespace) -> int:
    """``polyloss parity``: run the matrix; table, ``--json`` and ``--report DIR``; exit status 0
    only when every cell is within tolerance."""
    from polyloss.parity import report
    from polyloss.parity import run as runner
    from polyloss.parity.backends import BACKENDS

    requested = [b for b in args.backend or [] if not BACKENDS[b].available()]
    if requested:
        for b in requested:
            print(f"polyloss parity: backend {b} cannot run here: {BACKENDS[b].unavailable_reason()}",
                  file=sys.stderr)
        return 1
    progress = _Progress(enabled=not args.no_progress)
    matrix = runner.run_matrix(args.backend, args.convention, args.loss, args.dtype, args.device,
                               progress=progress, jobs=args.jobs)
    status = 1 if matrix.failures or not matrix.results else 0
    env = report.environment()
    if args.report:
        written, note = report.write_report(matrix, args.report, env)
        if note:
            print(f"polyloss parity: {note}", file=sys.stderr)
        print(f"polyloss parity: wrote {', '.join(written)}", file=sys.stderr)
    if args.json:
        print(report.dumps(report.to_json(matrix, env)))
    else:
        print(report.table(matrix))
        if not matrix.results:
            print("No cell ran (check the filters).")
    return status


def bench(args: argparse.Namespace) -> int:
    """``polyloss bench``: time (and size) polyloss against the natives; see docs/performance.md."""
    from polyloss.bench import report as reports
    from polyloss.bench import runner, targets

    def log(text: str) -> None:
        if not args.quiet:
            print(f"polyloss bench: {text}", file=sys.stderr, flush=True)

    if args.from_json:
        with open(args.from_json) as f:
            result = reports.load_json(f.read())
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
    if args.note:
        result["note"] = args.note
    targets.judge(result)
    if args.write_results:
        command = "polyloss bench"
        if args.from_json and result.get("command"):
            command = result["command"]  # re-rendered: the command that measured it
        elif sys.argv[1:2] == ["bench"]:
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
    p = sub.add_parser("parity", help="check every loss on every installed backend",
                       description="Every loss and mirror on every installed backend, dtype and device, "
                                   "values and gradients, against the NumPy float64 oracle (canonical "
                                   "losses) and each framework's real native loss (mirrors). Exit status "
                                   "0 only when every cell is within tolerance.")
    p.add_argument("--backend", action="append", choices=list(PARITY_BACKENDS),
                   help="only this backend (repeatable)")
    p.add_argument("--convention", action="append", choices=CONVENTIONS,
                   help="only this convention (repeatable)")
    p.add_argument("--loss", action="append", help="only this loss family, e.g. huber (repeatable)")
    p.add_argument("--dtype", action="append", choices=PARITY_DTYPES, help="only this dtype (repeatable)")
    p.add_argument("--device", action="append", choices=PARITY_DEVICES,
                   help="only this device (repeatable; cuda runs where a GPU is present)")
    p.add_argument("--json", action="store_true",
                   help="print every cell as JSON (schema: python -m polyloss.parity.schema)")
    p.add_argument("--report", metavar="DIR",
                   help="write DIR/index.html (the full matrix), DIR/heatmap.png and DIR/parity.json")
    p.add_argument("--jobs", type=int, metavar="N",
                   help="worker processes (default: 1 for small runs, else one per core, at most 4)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
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
    b.add_argument("--note", help="a remark stored with the report (e.g. the machine's load)")
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

"""The ``polyloss`` command.

``polyloss parity``: every loss and mirror on every installed backend, against the NumPy
float64 oracle (canonical losses) or the framework's real native loss (mirrors), values and
gradients, as a table; exit status 0 only when every cell is within tolerance.
``polyloss bench``: polyloss's time as a ratio of the native loss's, measured in one process.
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
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

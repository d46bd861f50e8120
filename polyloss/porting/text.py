"""The ``polyloss port`` command's output: text for people, JSON for programs."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap

from polyloss.porting.check import CheckResult, check
from polyloss.porting.core import TARGETS, Port, Target, port
from polyloss.porting.frameworks import FRAMEWORKS
from polyloss.porting.spelling import SpellingError

__all__ = ["run", "format_port", "format_check", "add_arguments"]

_STATUS_TEXT = {
    "exact": "exact (the same values, up to rounding)",
    "edges": "exact on ordinary inputs; differs at the edge inputs below",
    "approximate": "approximate: differs by the amount below",
    "none": "no native equivalent",
}


def _bullets(items: list[str], indent: str) -> list[str]:
    out = []
    for item in items:
        wrapped = textwrap.wrap(item, width=100, initial_indent=f"{indent}- ",
                                subsequent_indent=f"{indent}  ")
        out += wrapped
    return out


def _code(lines: list[str], indent: str) -> list[str]:
    return [f"{indent}{line}" for line in lines]


def _target(t: Target, source: str) -> list[str]:
    fw = FRAMEWORKS[t.convention]
    out = [f"{t.convention} ({fw.title}): {_STATUS_TEXT[t.status]}"]
    if t.status == "none":
        out += _bullets(t.differences, "    ")
    else:
        out += _code(t.code, "    ")
        if t.notes:
            out.append("  notes:")
            out += _bullets(t.notes, "    ")
        if t.differences:
            out.append("  cannot be expressed natively:")
            out += _bullets(t.differences, "    ")
    if t.convention != "polyloss":
        out.append(f"  polyloss mirror ({source} semantics, exact, on {fw.array_type}):")
        out += _code(t.mirror, "    ")
    return out


def format_port(p: Port) -> str:
    call = p.call
    out = [f"{call.native()}", f"  {p.concept.title} ({call.convention})"]
    out += _bullets(p.spec.notes + p.concept.notes, "  ")
    for t in p.targets.values():
        out.append("")
        out += _target(t, call.convention)
    out.append("")
    canonical = p.canonical
    if canonical.status == "none":
        out.append("canonical polyloss: no canonical spelling")
        out += _bullets(canonical.differences, "    ")
    else:
        out.append(f"canonical polyloss: {_STATUS_TEXT[canonical.status]}")
        out += _code(canonical.code, "    ")
        out += _bullets(canonical.differences, "    ")
    return "\n".join(out)


def _fmt(x: float | None) -> str:
    return "-" if x is None else "0" if x == 0 else f"{x:.1e}"


def format_check(result: CheckResult) -> str:
    out = [f"check ({result.dtype}, seed {result.seed}): max relative difference from "
           f"{result.reference}"]
    if result.note and not result.comparisons:
        out.append(f"  {result.note}")
    for c in result.comparisons:
        what = {"native": "native snippet", "mirror": "polyloss mirror",
                "canonical": "canonical spelling"}[c.what]
        if not c.ran:
            verdict = c.note
        else:
            verdict = (f"{_fmt(c.error)} (tol {_fmt(c.tol)}) "
                       + ("agrees" if c.agrees else "DISAGREES" if c.expected in ("exact", "edges")
                          else f"differs, as documented ({c.expected})"))
        out.append(f"  {c.target:8} {what:18} on {c.runs_on}: {verdict}")
    out.append("FAILED: a pair the table marks exact disagrees" if result.failed else
               "every pair marked exact agrees")
    return "\n".join(out)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spelling", nargs="?",
                        help='the loss call, e.g. "torch.nn.CrossEntropyLoss(label_smoothing=0.1)"')
    parser.add_argument("--to", default=None,
                        help=f"comma-separated targets among {', '.join(TARGETS)} (default: every "
                             "other framework)")
    parser.add_argument("--check", action="store_true",
                        help="run the source, each target's snippet and the mirror on random inputs "
                             "and print their differences")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float64",
                        help="the dtype of --check's inputs (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="--check's random seed")
    parser.add_argument("--json", action="store_true", help="print the answer as JSON")
    parser.add_argument("--markdown", action="store_true",
                        help="print docs/porting.md (the equivalence tables of every loss)")


def run(args: argparse.Namespace) -> int:
    if args.markdown:
        from polyloss.porting.docs import markdown

        sys.stdout.write(markdown())
        return 0
    if not args.spelling:
        print("polyloss port: give a loss spelling, e.g. polyloss port "
              "\"torch.nn.CrossEntropyLoss(label_smoothing=0.1)\" --to keras,optax (or --markdown)",
              file=sys.stderr)
        return 2
    targets = [t.strip() for t in args.to.split(",") if t.strip()] if args.to else None
    try:
        p = port(args.spelling, targets)
    except SpellingError as e:
        print(str(e), file=sys.stderr)
        return 2
    result = check(p, args.dtype, args.seed) if args.check else None
    if args.json:
        data = p.as_dict()
        if result is not None:
            data["check"] = result.as_dict()
        print(json.dumps(data, indent=1, ensure_ascii=False))
    else:
        print(format_port(p))
        if result is not None:
            print()
            print(format_check(result))
    return 1 if result is not None and result.failed else 0

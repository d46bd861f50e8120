"""The bench's outputs: the terminal table, JSON, CSV and the results file (Markdown + JSON).

All of them render one report dictionary (:func:`polyloss.bench.runner.run`, judged by
:func:`polyloss.bench.targets.judge`); ``polyloss bench --from-json`` re-renders a saved one.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict

from polyloss.bench.registry import SIDES, load_families

__all__ = ["table", "to_json", "load_json", "to_csv", "results_markdown", "write_results", "CSV_COLUMNS"]

CSV_COLUMNS = (
    "section",
    "backend",
    "family",
    "size",
    "exec",
    "pass",
    "side",
    "impl",
    "median_s",
    "min_s",
    "ratio",
    "target",
    "verdict",
    "compile_s",
    "peak_mib",
    "method",
    "note",
)


def fmt_time(s: float | None) -> str:
    if s is None:
        return "-"
    if s < 1e-3:
        return f"{s * 1e6:.3g}µs"
    if s < 1:
        return f"{s * 1e3:.3g}ms"
    return f"{s:.3g}s"


def _fmt_ratio(r: float | None) -> str:
    return "-" if r is None else f"{r:.2f}"


def _mib(b: float | None) -> str:
    return "-" if b is None else f"{b / 2**20:.1f}"


def _cells(report: dict) -> dict:
    """(backend, family, size, exec, pass) -> {side: row}, in registry and size order."""
    cells: dict = defaultdict(dict)
    for r in report["rows"]:
        cells[(r["backend"], r["family"], r["size"], r["exec"], r["pass"])][r["side"]] = r
    return cells


def _ordered_keys(report: dict, cells: dict) -> list[tuple]:
    families = load_families()
    fam_order = {name: i for i, name in enumerate(families)}
    size_order = {(name, s.name): i for name, fam in families.items() for i, s in enumerate(fam.sizes)}
    backends = report["config"]["backends"]
    return sorted(
        cells,
        key=lambda k: (
            backends.index(k[0]) if k[0] in backends else 99,
            fam_order.get(k[1], 99),
            size_order.get((k[1], k[2]), 99),
            k[3] != "eager",
            k[4] != "fwd",
        ),
    )


def _cell_summary(sides: dict, exec_: str, reference_mark: str) -> tuple[str, float | None, str]:
    """A cell's native time (marked if it is a hand-written reference), its target and compile times."""
    native = sides.get("native")
    text = "-" if native is None else "error" if native.get("error") else fmt_time(native["median_s"])
    if native and native.get("kind") == "reference":
        text += reference_mark
    target = next((r["target"] for r in sides.values() if r.get("target") is not None), None)
    compile_s = ""
    if exec_ == "compiled":
        compile_s = "/".join(
            f"{sides[x]['compile_s']:.1f}" if x in sides and sides[x].get("compile_s") is not None else "-"
            for x in SIDES
        )
    return text, target, compile_s


def _side_text(row: dict | None) -> str:
    """Time, ratio and verdict in fixed columns (9 + 1 + 6 + 1 + 4 characters)."""
    if row is None:
        return " " * 21
    if row.get("error"):
        return f"{'error':>9} {'':6} {'':4}"
    return f"{fmt_time(row['median_s']):>9} {_fmt_ratio(row.get('ratio')):>6} {row.get('verdict', ''):4}"


def _header_lines(report: dict) -> list[str]:
    m = report["machine"]
    cfg = report["config"]
    lines = [
        f"polyloss bench — {report['date']} — {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, "
        f"Python {m['python']}",
        "versions: " + ", ".join(f"{k} {v}" for k, v in report["versions"].items()) + _source_text(report),
        f"threads: {cfg['threads']} per framework (each framework in its own process, pinned to cores "
        f"{_pinned(report)}); malloc: {cfg['malloc']}",
        f"timing: median of {cfg['repeats']} interleaved repeats of >= {cfg['min_time_s'] * 1e3:g} ms each, "
        f"after {cfg['warmup']} warm-up calls; ratio = polyloss / native (same process, same inputs)",
        f"load average before / after: {report['load'].get('before')} / {report['load'].get('after')}",
        *([f"note: {report['note']}"] if report.get("note") else []),
    ]
    for backend, threads in report["threads"].items():
        lines.append(
            f"  {backend}: " + ", ".join(f"{k}={v}" for k, v in threads.items() if k != "pinned cores")
        )
    return lines


def _source_text(report: dict) -> str:
    src = report.get("source") or {}
    if not src.get("commit"):
        return ""
    dirty = f", {len(src['modified'])} uncommitted file(s) in polyloss/" if src.get("modified") else ""
    return f" (polyloss at commit {src['commit']}{dirty})"


def _pinned(report: dict) -> str:
    cores = {tuple(t.get("pinned cores", ())) for t in report["threads"].values()}
    return ", ".join(str(list(c)) for c in sorted(cores)) or "?"


def table(report: dict) -> str:
    """The terminal table: one line per (backend, family, size, exec, pass)."""
    out = _header_lines(report)
    cells = _cells(report)
    current = None
    for key in _ordered_keys(report, cells):
        backend, family, size, exec_, pass_ = key
        if backend != current:
            current = backend
            compiler = report["compilers"].get(backend, "none")
            out += [
                "",
                f"== {backend} (compiled: {compiler})",
                f"{'family':12} {'size':13} {'exec':8} {'pass':7} {'native':>10}  "
                f"{'polyloss':>9} {'ratio':>6} {'':4}  {'mirror':>9} {'ratio':>6} {'':4}  {'target':>6}  "
                "compile s (n/p/m)",
            ]
        sides = cells[key]
        native_text, target, compile_s = _cell_summary(sides, exec_, "*")
        out.append(
            f"{family:12} {size:13} {exec_:8} {pass_:7} {native_text:>10}  "
            f"{_side_text(sides.get('polyloss'))}  {_side_text(sides.get('mirror'))}  "
            f"{('<=' + format(target, '.2f')) if target else '':>6}  {compile_s}"
        )
    out += ["", "* a hand-written reference, where the framework has no such loss (judged on NumPy only)"]
    out += _namespace_lines(report) + _memory_lines(report) + _problem_lines(report) + _miss_lines(report)
    out.append(
        f"\n{report['summary']['judged']} cells judged: {report['summary']['pass']} PASS, "
        f"{report['summary']['miss']} MISS; {report.get('seconds', '?')} s in total"
    )
    return "\n".join(out)


def _namespace_lines(report: dict) -> list[str]:
    if not report["namespace"]:
        return []
    out = ["", "Namespace resolution, cached type (median per call; the fastest of 7 repeats in brackets):"]
    for n in report["namespace"]:
        verdict = f"  {n['verdict']} (target <= {n['target_s'] * 1e6:.1f} µs)" if n.get("verdict") else ""
        out.append(
            f"  {n['backend']:10} {n['call']:24} {n['median_s'] * 1e6:6.3f} µs "
            f"({n['min_s'] * 1e6:.3f}){verdict}"
        )
    return out


def _memory_lines(report: dict) -> list[str]:
    if not report["memory"]:
        return []
    out = ["", "Peak memory, cross-entropy 4096x1000 (MiB above the inputs; ratio = polyloss / native):"]
    for m in sorted(
        report["memory"],
        key=lambda m: (
            report["config"]["backends"].index(m["backend"]),
            m["exec"] != "eager",
            SIDES.index(m["side"]),
        ),
    ):
        ratio = f"{m['ratio']:.2f}" if m.get("ratio") is not None else "-"
        first = (
            f", first call {_mib(m.get('first_call_bytes'))}" if m.get("first_call_bytes") is not None else ""
        )
        out.append(
            f"  {m['backend']:10} {m['exec']:8} {m['pass']:7} {m['side']:8} {_mib(m['peak_bytes']):>7} MiB"
            f"  ratio {ratio:>5} {m.get('verdict', ''):4}  ({m['method']}{first})"
        )
    return out


def _problem_lines(report: dict) -> list[str]:
    out = []
    bad = [c for c in report["checks"] if c["problem"]]
    if bad:
        out += ["", "VALUE CHECK PROBLEMS (a side does not compute what its native does):"]
        out += [f"  {c['backend']} {c['family']} {c['size']}: {c['problem']}" for c in bad]
    errors = [r for r in report["rows"] if r.get("error")]
    if errors or report["errors"]:
        out += ["", "Errors:"]
        out += [
            f"  {r['backend']} {r['family']} {r['size']} {r['exec']} {r['pass']} {r['side']}: {r['error']}"
            for r in errors
        ]
        out += [f"  {e['backend']} {e['part']}: {e['error']}" for e in report["errors"]]
    return out


def miss_text(m: dict) -> str:
    if m["what"] == "namespace":
        return f"{m['backend']} {m['side']}: {m['value'] * 1e6:.3f} µs > {m['target'] * 1e6:.1f} µs"
    if m["value"] is None:
        return (
            f"{m['backend']} {m['family']} {m['size']} {m['exec']} {m['pass']} {m['side']}: did not run "
            f"({m['error']})"
        )
    what = "peak memory " if m["what"] == "memory" else ""
    return (
        f"{m['backend']} {m['family']} {m['size']} {m['exec']} {m['pass']} {m['side']}: {what}"
        f"{m['value']:.2f}x > {m['target']:.2f}x (+{(m['value'] / m['target'] - 1) * 100:.0f}% over)"
    )


def _miss_lines(report: dict) -> list[str]:
    if not report["misses"]:
        return ["", "Every judged cell meets its target."] if report["summary"]["judged"] else []
    return ["", f"Misses ({len(report['misses'])}):"] + [f"  {miss_text(m)}" for m in report["misses"]]


_ROUNDED = ("median_s", "min_s", "compile_s", "ratio")


def _round(row: dict) -> dict:
    """Timings to 4 significant digits (run-to-run noise is in the second)."""
    return {k: float(f"{v:.4g}") if k in _ROUNDED and isinstance(v, float) else v for k, v in row.items()}


def to_json(report: dict) -> str:
    """The report as JSON, one line per measurement; what each side calls is stored once per
    (backend, family) under ``compared`` instead of on every row (:func:`load_json` restores it)."""
    compared: dict = {}
    rows = []
    for r in report.get("rows", []):
        compared.setdefault(f"{r['backend']}/{r['family']}", {})[r["side"]] = r.get("impl", "")
        rows.append(_round({k: v for k, v in r.items() if k != "impl"}))
    packed = {**report, "rows": rows, "compared": compared}
    parts = []
    for key, value in packed.items():
        if isinstance(value, list) and value and all(isinstance(x, dict) for x in value):
            body = ",\n".join("  " + json.dumps(x, default=str, ensure_ascii=False) for x in value)
            parts.append(f" {json.dumps(key)}: [\n{body}\n ]")
        else:
            parts.append(f" {json.dumps(key)}: {json.dumps(value, default=str, ensure_ascii=False)}")
    return "{\n" + ",\n".join(parts) + "\n}"


def load_json(text: str) -> dict:
    """A report written by :func:`to_json` (or by ``--json``), with every row's ``impl`` back."""
    report = json.loads(text)
    compared = report.pop("compared", {})
    for r in report.get("rows", []):
        r.setdefault("impl", compared.get(f"{r['backend']}/{r['family']}", {}).get(r["side"], ""))
    return report


def to_csv(report: dict) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in report["rows"]:
        w.writerow({"section": "time", **r, "note": r.get("error", "")})
    for m in report["memory"]:
        w.writerow({"section": "memory", **m, "peak_mib": round(m["peak_bytes"] / 2**20, 3)})
    for n in report["namespace"]:
        w.writerow(
            {
                "section": "namespace",
                "backend": n["backend"],
                "side": n["call"],
                "median_s": n["median_s"],
                "min_s": n["min_s"],
                "target": n.get("target_s"),
                "verdict": n.get("verdict", ""),
            }
        )
    return buf.getvalue()


# ---- the results file ---------------------------------------------------------------------------


def results_markdown(report: dict, command: str = "") -> str:
    """The results file: machine, versions, date, threads, method, then every table."""
    m, cfg = report["machine"], report["config"]
    s = report["summary"]
    out = [
        "# polyloss bench results",
        "",
        "Generated by `polyloss bench --write-results`; do not edit by hand. See docs/performance.md for "
        "the method and how to read the tables.",
        "",
        f"- date: {report['date']}",
        *([f"- note: {report['note']}"] if report.get("note") else []),
        f"- command: `{command or 'polyloss bench'}`",
        f"- machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB RAM, {m['platform']}, "
        f"Python {m['python']}",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in report["versions"].items()) + _source_text(report),
        f"- threads: {cfg['threads']} per framework, each framework in its own process pinned to cores "
        f"{_pinned(report)}; malloc: {cfg['malloc']}",
    ]
    out += [
        f"  - {b}: " + ", ".join(f"{k} = {v}" for k, v in t.items() if k != "pinned cores")
        for b, t in report["threads"].items()
    ]
    out += [
        "- compiled mode: " + "; ".join(f"{b}: {c}" for b, c in report["compilers"].items()),
        f"- timing: median of {cfg['repeats']} interleaved repeats (native, polyloss, mirror, rotating), "
        f"each >= {cfg['min_time_s'] * 1e3:g} ms, after {cfg['warmup']} warm-up calls; compile time "
        "(first call) excluded and listed separately",
        f"- load average before / after: {report['load'].get('before')} / {report['load'].get('after')}; "
        "other processes' CPU use per part is listed at the end",
        f"- total time: {report.get('seconds', '?')} s",
        "",
        "## Targets",
        "",
    ]
    out += [f"- {t}" for t in report["targets"]]
    out += [
        "",
        f"{s['judged']} cells judged: **{s['pass']} PASS, {s['miss']} MISS**; value-check problems: "
        f"{s['value_check_problems']}; errors: {s['errors']}.",
        "",
    ]
    if report["misses"]:
        out += ["### Misses", ""] + [f"- {miss_text(x)}" for x in report["misses"]] + [""]
    out += [
        "## Namespace resolution (per call, cached type)",
        "",
        "| backend | call | median µs | fastest µs | verdict |",
        "|---|---|---|---|---|",
    ]
    out += [
        f"| {n['backend']} | `{n['call']}` | {n['median_s'] * 1e6:.3f} | {n['min_s'] * 1e6:.3f} | "
        f"{n.get('verdict', '')} |"
        for n in report["namespace"]
    ]
    if report["memory"]:
        out += [
            "",
            "## Peak memory, cross-entropy 4096x1000",
            "",
            "MiB above the inputs; ratio = polyloss / native of the same backend and mode.",
            "",
            "| backend | exec | pass | side | calls | peak MiB | first call MiB | ratio | verdict | method |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for x in sorted(
            report["memory"],
            key=lambda x: (cfg["backends"].index(x["backend"]), x["exec"] != "eager", SIDES.index(x["side"])),
        ):
            out.append(
                f"| {x['backend']} | {x['exec']} | {x['pass']} | {x['side']} | `{x['impl']}` | "
                f"{_mib(x['peak_bytes'])} | {_mib(x.get('first_call_bytes'))} | "
                f"{_fmt_ratio(x.get('ratio'))} | "
                f"{x.get('verdict', '')} | {x['method']} |"
            )
    out += [
        "",
        "## Time per call (median) and ratio polyloss / native",
        "",
        "`*` marks a hand-written reference where the framework has no such loss. Verdicts apply to "
        "fwd+bwd (NumPy: fwd) at the sizes the targets name. Compile: first-call seconds "
        "(native / polyloss / mirror).",
        "",
    ]
    cells = _cells(report)
    current = None
    for key in _ordered_keys(report, cells):
        backend, family, size, exec_, pass_ = key
        if backend != current:
            current = backend
            out += [
                "",
                f"### {backend}",
                "",
                "| family | size | exec | pass | native | polyloss | ratio | verdict | mirror | ratio "
                "| verdict | target | compile s |",
                "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
            ]
        sides = cells[key]
        native_text, target, compile_s = _cell_summary(sides, exec_, "\\*")
        out.append(
            f"| {family} | {size} | {exec_} | {pass_} | {native_text} | {_md_side(sides.get('polyloss'))} | "
            f"{_md_side(sides.get('mirror'))} | {('<= ' + format(target, '.2f')) if target else ''} | "
            f"{compile_s} |"
        )
    out += [
        "",
        "## What is compared",
        "",
        "| backend | family | native | polyloss | mirror |",
        "|---|---|---|---|---|",
    ]
    seen = set()
    for r in report["rows"]:
        k = (r["backend"], r["family"])
        if k in seen:
            continue
        seen.add(k)
        labels = {x["side"]: x["impl"] for x in report["rows"] if (x["backend"], x["family"]) == k}
        out.append(
            f"| {k[0]} | {k[1]} | `{labels.get('native', '')}` | `{labels.get('polyloss', '')}` | "
            f"`{labels.get('mirror', '-')}` |"
        )
    if report["skipped"]:
        out += ["", "## Not run", ""]
        reasons: dict = defaultdict(list)
        for x in report["skipped"]:
            where = " ".join(
                v
                for v in (x["backend"], x["family"], x.get("size", ""), x["exec"], x["side"])
                if v and v != "*"
            )
            reasons[x["reason"]].append(where)
        for reason, where in reasons.items():
            out.append(f"- {reason}: {', '.join(where)}")
    problems = _problem_lines(report)
    if problems:
        out += ["", "## Problems", "", "```"] + [p for p in problems if p] + ["```"]
    out += [
        "",
        "## Load during each part",
        "",
        "| part | wall s | own cores | others' cores |",
        "|---|---|---|---|",
    ]
    out += [
        f"| {p['part']} | {p['wall_s']} | {p['own_cores']} | {p['others_cores']} |" for p in report["parts"]
    ]
    return "\n".join(out) + "\n"


def _md_side(r: dict | None) -> str:
    """Time | ratio | verdict cells of one side."""
    if r is None:
        return " | | "
    if r.get("error"):
        return f"error: {r['error'][:80]} | | "
    return f"{fmt_time(r['median_s'])} | {_fmt_ratio(r.get('ratio'))} | {r.get('verdict', '')}"


def write_results(report: dict, path: str, command: str = "") -> tuple[str, str]:
    """Write ``path`` (Markdown) and the same report as JSON next to it (``.json``)."""
    base = path[:-3] if path.endswith(".md") else path
    md_path, json_path = base + ".md", base + ".json"
    with open(md_path, "w") as f:
        f.write(results_markdown(report, command))
    with open(json_path, "w") as f:
        f.write(to_json({**report, "command": command}) + "\n")
    return md_path, json_path

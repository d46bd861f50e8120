"""What ``polyloss parity`` shows: the terminal tables, the JSON document
(``polyloss.parity.schema``) and the report directory (``index.html`` with the full matrix,
``heatmap.png`` of the worst error per loss and backend, ``parity.json``).

Matplotlib (the ``plot`` extra) is imported only to draw the heatmap; without it the page is
written without the figure and says so.
"""

from __future__ import annotations

import html
import importlib.metadata
import json
import math
import os
import platform
import sys
from collections import defaultdict
from typing import Any

from polyloss.parity import differences as diffs
from polyloss.parity.run import DTYPES, Matrix, Result, _ratio
from polyloss.parity.schema import SCHEMA_VERSION, json_number

FRAMEWORKS = ("polyloss", "numpy", "torch", "tensorflow", "keras", "mxnet", "jax", "jaxlib", "optax",
              "array-api-compat", "array-api-strict", "dask", "cupy", "ml_dtypes", "matplotlib")

TOLERANCE_POLICY = {
    "relative_error": "max |a - e| / max(|e|, floor) over the elements; NaN matching NaN and equal "
                      "infinities count as equal",
    "float64": "1e-12",
    "float32": "8 ulps x max(1, log2 n), n = the prediction's size (the reduction length)",
    "float16/bfloat16 vs the oracle": "polyloss computes in float32 and rounds once: float32's "
                                      "tolerance + half an ulp of the dtype",
    "float16/bfloat16 vs a native": "polyloss's tolerance + the native's own error, 2 ulps x "
                                    "max(1, log2 n) + half an ulp (its final rounding)",
    "floor": "results that cancel compare absolutely to their terms' size (term_scale); below the "
             "smallest normal number errors are absolute (float32/bfloat16: flush to zero allowed; "
             "float16: one subnormal step); gradients relative to their largest element (or 1/n)",
    "references": "canonical losses: the same loss on NumPy float64 arrays built from the same cast "
                  "inputs, gradients from float64 autograd (torch where installed) on them; mirrors: "
                  "the real native loss on its framework's own CPU arrays",
    "exceptions": "only the documented deliberate differences (polyloss.parity.differences), each "
                  "with its measured size",
}


def environment() -> dict[str, Any]:
    """Python, platform and the version of every framework (from package metadata: nothing is
    imported)."""
    versions: dict[str, str | None] = {}
    for name in FRAMEWORKS:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {"python": sys.version.split()[0], "platform": platform.platform(),
            "cpu_count": os.cpu_count() or 1, "frameworks": versions}


def _fmt(ratio: float | None) -> str:
    if ratio is None:
        return "-"
    if ratio == 0:
        return "0"
    if math.isinf(ratio) or math.isnan(ratio):
        return "inf"
    return f"{ratio:.0e}" if ratio < 0.01 else f"{ratio:.2f}"


def _grad_ratio(r: Result) -> float | None:
    return None if r.grad_err is None else _ratio(r.grad_err, r.gradient_tol)


def _value_ratio(r: Result) -> float:
    return _ratio(r.value_err, r.tol)


# ---- JSON ------------------------------------------------------------------------------------

def to_json(m: Matrix, env: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``--json`` document (schema: ``polyloss.parity.schema.JSON_SCHEMA``)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "ok": not m.failures,
        "backends": m.backends,
        "dtypes": m.dtypes,
        "devices": m.devices,
        "unavailable": m.unavailable,
        "jobs": m.jobs,
        "seconds": round(m.seconds, 2),
        "timings": m.timings,
        "cases": len(m.results),
        "cells": len(m.results),
        "failures": len(m.failures),
        "environment": env or environment(),
        "tolerance_policy": TOLERANCE_POLICY,
        "skipped": [{"reason": s.reason, "backend": s.backend, "device": s.device, "dtype": s.dtype,
                     "convention": s.convention, "loss": s.loss, "cells": s.cells} for s in m.skipped],
        "deliberate_differences": diffs.as_dicts(),
        "results": [
            {"convention": r.case.convention, "loss": r.case.label, "family": r.case.family,
             "backend": r.backend, "device": r.device, "dtype": r.dtype, "input": r.edge,
             "reference": r.reference, "value_err": json_number(r.value_err),
             "grad_err": json_number(r.grad_err), "tol": r.tol, "grad_tol": r.gradient_tol,
             "value_ratio": json_number(_value_ratio(r)), "grad_ratio": json_number(_grad_ratio(r)),
             "ok": r.ok, "out_dtype": r.out_dtype, "expected_dtype": r.expected_dtype, "note": r.note}
            for r in m.results
        ],
    }


def dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=1, allow_nan=False)


# ---- terminal ---------------------------------------------------------------------------------

def _worst_by_case(results: list[Result]) -> tuple[list[tuple], dict]:
    worst: dict = defaultdict(lambda: defaultdict(lambda: [0.0, None, True, set()]))
    order: list = []
    for r in results:
        key = (r.case.convention, r.case.label)
        if key not in worst:
            order.append(key)
        cell = worst[key][r.backend]
        cell[0] = max(cell[0], _value_ratio(r))
        g = _grad_ratio(r)
        if g is not None:
            cell[1] = g if cell[1] is None else max(cell[1], g)
        if not r.ok:
            cell[2] = False
            cell[3].add(r.dtype)
    return order, worst


def _skip_lines(m: Matrix) -> list[str]:
    by_reason: dict[str, list[str]] = defaultdict(list)
    cells: dict[str, int] = defaultdict(int)
    for s in m.skipped:
        what = " ".join(x for x in (s.convention, s.loss) if x)
        where = " ".join(x for x in (s.backend, s.device, s.dtype) if x)
        by_reason[s.reason].append(what or where)
        cells[s.reason] += s.cells
    lines = []
    for reason, whats in by_reason.items():
        shown = ", ".join(dict.fromkeys(whats))
        if len(shown) > 120:
            shown = shown[:117] + "..."
        count = f" ({cells[reason]} cells)" if cells[reason] else ""
        lines.append(f"  {shown}{count}: {reason}")
    return lines


_SHORT = {"float32": "f32", "float64": "f64", "float16": "f16", "bfloat16": "bf16"}


def table(m: Matrix) -> str:
    """The terminal summary: worst error per case and backend, a backend x dtype summary, what
    was skipped, and the failures."""
    out: list[str] = []
    backends = m.backends
    order, worst = _worst_by_case(m.results)
    label_width = min(64, max((len(k[1]) for k in order), default=10))
    col = 13
    out.append("Worst error per backend over every dtype, device and input, as a fraction of the "
               "tolerance (value / gradient; <= 1 passes; 0 = bit-identical)")
    header = f"{'convention':10} {'loss':{label_width}} " + " ".join(f"{b[:col]:>{col}}" for b in backends)
    out += [header, "-" * len(header)]
    for key in order:
        conv, label = key
        cells = []
        for b in backends:
            if b not in worst[key]:
                cells.append(f"{'n/a':>{col}}")
                continue
            v, g, ok, bad = worst[key][b]
            text = f"{_fmt(v)}/{_fmt(g)}" if ok else "FAIL " + ",".join(_SHORT[d] for d in DTYPES if d in bad)
            cells.append(f"{text:>{col}}")
        out.append(f"{conv:10} {label[:label_width]:{label_width}} " + " ".join(cells))

    ran_on = sorted({r.device for r in m.results}, key=list(m.devices).index) or ["cpu"]
    out += ["", f"Cells per backend and dtype (worst fraction of the tolerance; on {', '.join(ran_on)})"]
    dtypes = [d for d in DTYPES if d in m.dtypes]
    out.append(f"{'backend':17}" + "".join(f"{d:>18}" for d in dtypes))
    summary: dict = defaultdict(lambda: [0, 0.0, 0])
    for r in m.results:
        s = summary[(r.backend, r.dtype)]
        s[0] += 1
        s[1] = max(s[1], r.worst)
        s[2] += not r.ok
    for b in backends:
        cells = []
        for d in dtypes:
            n, w, bad = summary.get((b, d), (0, 0.0, 0))
            text = "-" if n == 0 else f"{n} {_fmt(w)}" + (f" {bad}F" if bad else "")
            cells.append(f"{text:>18}")
        out.append(f"{b:17}" + "".join(cells))
    skips = _skip_lines(m)
    if skips:
        out += ["", "Skipped:"] + skips
    in_matrix = [d for d in diffs.DIFFERENCES if d.in_matrix]
    out += ["", f"Documented deliberate differences: {len(diffs.DIFFERENCES)} ({len(in_matrix)} change a "
            "comparison: " + ", ".join(d.id for d in in_matrix) + "); --report DIR lists them"]
    out.append(f"\n{len(m.results)} cells on {', '.join(backends)} ({', '.join(dtypes)}; "
               f"{m.jobs} process{'es' if m.jobs > 1 else ''}, {m.seconds:.1f} s)")
    failures = m.failures
    if failures:
        out.append(f"\n{len(failures)} cell(s) out of tolerance:")
        for r in failures[:50]:
            out.append(f"  {r.case.convention} {r.case.label} on {r.backend} {r.device} {r.dtype} "
                       f"[{r.edge}] vs {r.reference}: value {_fmt(_value_ratio(r))}, grad "
                       f"{_fmt(_grad_ratio(r))} of tol {r.tol:.1e} {r.note}")
        if len(failures) > 50:
            out.append(f"  ... and {len(failures) - 50} more (--json or --report lists all)")
    else:
        out.append("All cells within tolerance.")
    return "\n".join(out)


# ---- the report directory -----------------------------------------------------------------------

_BUCKETS = ((0.0, "exact", "#eef6ee"), (0.1, "<= 0.1", "#c8e6c9"), (0.5, "<= 0.5", "#fff59d"),
            (1.0, "<= 1", "#ffcc80"), (math.inf, "> 1 (fail)", "#ef9a9a"))


def _colour(ratio: float) -> str:
    for limit, _, colour in _BUCKETS:
        if ratio <= limit:
            return colour
    return _BUCKETS[-1][2]


_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;font-size:12px;margin:.5em 0}
th,td{border:1px solid #ccc;padding:2px 5px;vertical-align:top}
th{background:#f2f2f2;position:sticky;top:0}
td.c{text-align:center;white-space:nowrap;font-family:ui-monospace,monospace}
td.na{background:#f7f7f7;color:#aaa}
code{font-size:12px}
.fail{color:#b00;font-weight:bold}
details>summary{cursor:pointer;font-weight:bold;margin:.4em 0}
.legend span{display:inline-block;padding:2px 8px;margin-right:4px;border:1px solid #ccc}
"""


def _e(x: Any) -> str:
    return html.escape(str(x))


def _matrix_html(m: Matrix) -> list[str]:
    columns = [(b, d) for b in m.backends for d in m.devices
               if any(r.backend == b and r.device == d for r in m.results)]
    cells: dict = {}
    rows: dict = defaultdict(set)
    for r in m.results:
        key = (r.case.convention, r.case.label)
        rows[key].add((r.edge, r.dtype))
        cells[(key, r.edge, r.dtype, r.backend, r.device)] = r
    out: list[str] = []
    conventions = list(dict.fromkeys(k[0] for k in rows))
    dtype_order = {d: i for i, d in enumerate(DTYPES)}
    for conv in conventions:
        keys = [k for k in rows if k[0] == conv]
        n_cells = sum(1 for r in m.results if r.case.convention == conv)
        bad = sum(1 for r in m.results if r.case.convention == conv and not r.ok)
        out.append(f"<details{' open' if bad else ''}><summary>{_e(conv)}: {len(keys)} cases, "
                   f"{n_cells} cells" + (f", <span class=fail>{bad} failed</span>" if bad else "")
                   + "</summary>")
        out.append("<table><tr><th>loss</th><th>input</th><th>dtype</th><th>vs</th>"
                   + "".join(f"<th>{_e(b)}<br>{_e(d)}</th>" for b, d in columns) + "</tr>")
        for key in keys:
            combos = sorted(rows[key], key=lambda ed: (ed[0] != "random", ed[0], dtype_order[ed[1]]))
            first = True
            for edge, dtype in combos:
                line = "<tr>"
                if first:
                    line += f"<td rowspan={len(combos)}><code>{_e(key[1])}</code></td>"
                    first = False
                ref = next((cells[(key, edge, dtype, b, d)].reference for b, d in columns
                            if (key, edge, dtype, b, d) in cells), "")
                line += f"<td>{_e(edge)}</td><td>{_e(dtype)}</td><td>{_e(ref)}</td>"
                for b, d in columns:
                    r = cells.get((key, edge, dtype, b, d))
                    if r is None:
                        line += "<td class='c na'>n/a</td>"
                        continue
                    v, g = _value_ratio(r), _grad_ratio(r)
                    title = (f"value err {r.value_err:.3g}, grad err "
                             f"{'-' if r.grad_err is None else format(r.grad_err, '.3g')}, tol {r.tol:.3g}"
                             + (f", returned {r.out_dtype}" if r.out_dtype else "")
                             + (f"; {r.note}" if r.note else ""))
                    text = f"{_fmt(v)} / {_fmt(g)}" + ("" if r.dtype_ok else " dtype!")
                    line += (f"<td class=c style='background:{_colour(r.worst if r.ok else math.inf)}' "
                             f"title='{_e(title)}'>{_e(text)}</td>")
                out.append(line + "</tr>")
        out.append("</table></details>")
    return out


def write_report(m: Matrix, directory: str, env: dict[str, Any] | None = None) -> tuple[list[str], str]:
    """Write ``index.html``, ``heatmap.png`` and ``parity.json`` into ``directory``; returns the
    paths written and a note ("" or why the heatmap is missing)."""
    os.makedirs(directory, exist_ok=True)
    env = env or environment()
    doc = to_json(m, env)
    written = []
    json_path = os.path.join(directory, "parity.json")
    with open(json_path, "w") as f:
        f.write(dumps(doc))
    written.append(json_path)
    png = os.path.join(directory, "heatmap.png")
    note = ""
    try:
        heatmap(m, png)
        written.append(png)
    except ImportError as exc:
        note = f"heatmap.png not written: matplotlib is not installed (the 'plot' extra): {exc}"
    page = os.path.join(directory, "index.html")
    with open(page, "w") as f:
        f.write(_page(m, env, note))
    written.insert(0, page)
    return written, note


def _page(m: Matrix, env: dict[str, Any], heatmap_note: str) -> str:
    failures = m.failures
    status = ("<p class=fail>" + f"{len(failures)} of {len(m.results)} cells out of tolerance</p>"
              if failures else f"<p>All {len(m.results)} cells within tolerance.</p>")
    out = ["<!doctype html><html><head><meta charset='utf-8'><title>polyloss parity</title>",
           f"<style>{_CSS}</style></head><body>", "<h1>polyloss parity</h1>", status,
           f"<p>{len(m.results)} cells: backends {', '.join(m.backends)}; dtypes {', '.join(m.dtypes)}; "
           f"devices {', '.join(m.devices)}; {m.jobs} process{'es' if m.jobs > 1 else ''}, "
           f"{m.seconds:.1f} s.</p>"]
    out.append("<h2>Worst error per loss and backend</h2>")
    if heatmap_note:
        out.append(f"<p>{_e(heatmap_note)}</p>")
    else:
        out.append("<p><img src='heatmap.png' alt='worst relative error / tolerance per loss and "
                   "backend' style='max-width:100%'></p>")
    summary: dict = defaultdict(lambda: [0, 0.0, 0])
    for r in m.results:
        s = summary[(r.backend, r.dtype, r.device)]
        s[0] += 1
        s[1] = max(s[1], r.worst)
        s[2] += not r.ok
    out.append("<h2>Summary</h2><table><tr><th>backend</th><th>device</th>"
               + "".join(f"<th>{_e(d)}</th>" for d in m.dtypes) + "</tr>")
    for b in m.backends:
        for dev in m.devices:
            if not any(k[0] == b and k[2] == dev for k in summary):
                continue
            line = f"<tr><td>{_e(b)}</td><td>{_e(dev)}</td>"
            for d in m.dtypes:
                n, w, bad = summary.get((b, d, dev), (0, 0.0, 0))
                if n == 0:
                    line += "<td class='c na'>n/a</td>"
                else:
                    line += (f"<td class=c style='background:{_colour(w if not bad else math.inf)}'>"
                             f"{n} cells, worst {_fmt(w)}" + (f", {bad} failed" if bad else "") + "</td>")
            out.append(line + "</tr>")
    out.append("</table>")
    out.append("<p class=legend>Cells: value / gradient error as a fraction of the tolerance. "
               + "".join(f"<span style='background:{c}'>{_e(label)}</span>" for _, label, c in _BUCKETS)
               + "</p>")
    if failures:
        out.append("<h2>Failures</h2><table><tr><th>convention</th><th>loss</th><th>backend</th>"
                   "<th>device</th><th>dtype</th><th>input</th><th>vs</th><th>value</th><th>gradient</th>"
                   "<th>note</th></tr>")
        for r in failures:
            out.append(f"<tr><td>{_e(r.case.convention)}</td><td><code>{_e(r.case.label)}</code></td>"
                       f"<td>{_e(r.backend)}</td><td>{_e(r.device)}</td><td>{_e(r.dtype)}</td>"
                       f"<td>{_e(r.edge)}</td><td>{_e(r.reference)}</td><td>{_fmt(_value_ratio(r))}</td>"
                       f"<td>{_fmt(_grad_ratio(r))}</td><td>{_e(r.note)}</td></tr>")
        out.append("</table>")
    if m.skipped:
        out.append("<h2>Skipped</h2><table><tr><th>what</th><th>reason</th></tr>")
        for line in _skip_lines(m):
            what, _, reason = line.strip().partition(": ")
            out.append(f"<tr><td>{_e(what)}</td><td>{_e(reason)}</td></tr>")
        out.append("</table>")
    if m.unavailable:
        out.append("<p>Not in this environment: " + "; ".join(
            f"{_e(b)} ({_e(why)})" for b, why in m.unavailable.items()) + "</p>")
    out.append("<h2>The full matrix</h2>")
    out += _matrix_html(m)
    out.append("<h2>Documented deliberate differences</h2><table><tr><th>id</th><th>convention</th>"
               "<th>loss</th><th>the native</th><th>polyloss</th><th>why</th><th>in the matrix</th></tr>")
    for d in diffs.DIFFERENCES:
        rule = d.measured
        if d.native_tol:
            rule += (" " if rule else "") + "tolerance " + ", ".join(
                f"{v:g} in {k}" for k, v in d.native_tol.items())
        if d.native_runs_in:
            rule += (" " if rule else "") + "native run in " + ", ".join(
                f"{v} for {k}" for k, v in d.native_runs_in.items())
        if d.native_promotes:
            rule += (" " if rule else "") + "compared at the input dtype's tolerance"
        if d.native_computes_in:
            rule += (" " if rule else "") + f"compared at {d.native_computes_in}'s tolerance"
        if d.edges:
            rule += f" (inputs: {', '.join(d.edges)})"
        out.append(f"<tr><td><code>{_e(d.id)}</code></td><td>{_e(d.convention)}</td><td>{_e(d.loss)}</td>"
                   f"<td>{_e(d.native)}</td><td>{_e(d.polyloss)}</td><td>{_e(d.why)}</td>"
                   f"<td>{_e(rule or '-')}</td></tr>")
    out.append("</table>")
    out.append("<h2>Tolerance policy</h2><table>")
    for k, v in TOLERANCE_POLICY.items():
        out.append(f"<tr><th style='position:static'>{_e(k)}</th><td>{_e(v)}</td></tr>")
    out.append("</table>")
    out.append("<h2>Environment</h2><table>")
    facts = [("python", env["python"]), ("platform", env["platform"]), ("CPU cores", env["cpu_count"])]
    facts += [(name, version or "not installed") for name, version in env["frameworks"].items()]
    for name, value in facts:
        out.append(f"<tr><th style='position:static'>{_e(name)}</th><td>{_e(value)}</td></tr>")
    out.append("</table>")
    out.append(f"<h2>Timings</h2><pre>{_e(json.dumps(m.timings, indent=1))}</pre>")
    out.append("</body></html>")
    return "\n".join(out)


def heatmap(m: Matrix, path: str) -> str:
    """Worst error / tolerance per loss (convention and family) and backend, as a PNG."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.colors import BoundaryNorm, ListedColormap

    worst: dict = {}
    for r in m.results:
        if r.backend == "reference":
            continue
        key = (f"{r.case.convention} · {r.case.family}", r.backend)
        worst[key] = max(worst.get(key, 0.0), r.worst if r.ok else max(r.worst, 1.5))
    rows = sorted({k[0] for k in worst}, key=lambda s: (s.split(" · ")[0] != "polyloss", s))
    cols = [b for b in m.backends if any(k[1] == b for k in worst)]
    import numpy as np

    data = np.full((len(rows), len(cols)), np.nan)
    for (row, col), v in worst.items():
        data[rows.index(row), cols.index(col)] = min(v, 10.0)
    bounds = [0.0, 1e-12, 0.1, 0.5, 1.0, 10.0]
    cmap = ListedColormap([c for _, _, c in _BUCKETS]).with_extremes(bad="#f7f7f7")
    fig, ax = plt.subplots(figsize=(2.5 + 1.2 * max(len(cols), 1), 1.2 + 0.22 * max(len(rows), 1)))
    ax.imshow(np.ma.masked_invalid(data), cmap=cmap, norm=BoundaryNorm(bounds, cmap.N), aspect="auto")
    ax.set_xticks(range(len(cols)), cols, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=7)
    for i in range(len(rows)):
        for j in range(len(cols)):
            if not np.isnan(data[i, j]):
                ax.text(j, i, _fmt(float(data[i, j])), ha="center", va="center", fontsize=6)
    ax.set_title("worst relative error / tolerance (<= 1 passes)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

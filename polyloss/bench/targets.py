"""The performance targets, and the verdict of each measured cell against them.

Ratios are polyloss / native, medians, forward+backward, on the bench's machine:

- batch >= 4096 ("large" sizes): <= 1.10 for every family and backend where a native exists,
  eager and compiled;
- batch 8 ("small" sizes): <= 1.30 on torch and NumPy, eager;
- namespace resolution (``backend_of`` on an already-seen type): <= 0.1 µs per call;
- peak memory of cross-entropy 4096 x 1000, forward+backward: <= 1.2 x native, every backend.

NumPy has no backward and no native losses: its forward pass is judged against the
hand-written NumPy reference. Elsewhere a hand-written reference (``kind="reference"``, where
the framework has no such loss) is reported but not judged.
"""

from __future__ import annotations

from typing import Any

__all__ = ["RATIO_TARGETS", "NAMESPACE_S", "MEMORY_RATIO", "judge", "describe"]

RATIO_TARGETS: dict[str, dict[str, Any]] = {
    "large": {
        "ratio": 1.10,
        "execs": ("eager", "compiled"),
        "backends": None,
        "text": "batch >= 4096: <= 1.10, eager and compiled, every backend with a native",
    },
    "small": {
        "ratio": 1.30,
        "execs": ("eager",),
        "backends": ("torch", "numpy"),
        "text": "batch 8: <= 1.30 on torch and NumPy (eager)",
    },
}
NAMESPACE_S = 0.1e-6
NAMESPACE_CALL = "backend_of(x)"
MEMORY_RATIO = 1.2


def describe() -> list[str]:
    return [t["text"] for t in RATIO_TARGETS.values()] + [
        f"namespace resolution ({NAMESPACE_CALL}, cached type): <= {NAMESPACE_S * 1e6:.1f} µs per call",
        f"peak memory, cross-entropy 4096x1000 fwd+bwd: <= {MEMORY_RATIO} x native, every backend",
    ]


def _judged_pass(backend: str) -> str:
    return "fwd" if backend == "numpy" else "fwd+bwd"


def _ratio_target(row: dict, native: dict | None) -> float | None:
    spec = RATIO_TARGETS.get(row.get("target_class") or "")
    if spec is None or native is None or row["pass"] != _judged_pass(row["backend"]):
        return None
    if row["exec"] not in spec["execs"] or (spec["backends"] and row["backend"] not in spec["backends"]):
        return None
    if native.get("kind") == "reference" and row["backend"] != "numpy":
        return None
    return spec["ratio"]


def _verdict(value: float | None, target: float | None) -> str:
    if target is None or value is None:
        return ""
    return "PASS" if value <= target else "MISS"


def judge(report: dict) -> dict:
    """Add ``ratio``/``target``/``verdict`` to every timing, memory and namespace entry, and the
    list of misses; returns ``report`` (changed in place)."""
    natives = {
        (r["backend"], r["family"], r["size"], r["exec"], r["pass"]): r
        for r in report["rows"]
        if r["side"] == "native"
    }
    misses: list[dict[str, Any]] = []
    for r in report["rows"]:
        native = natives.get((r["backend"], r["family"], r["size"], r["exec"], r["pass"]))
        r["ratio"] = None
        if r["side"] != "native" and native and native.get("median_s") and r.get("median_s"):
            r["ratio"] = r["median_s"] / native["median_s"]
        r["target"] = _ratio_target(r, native) if r["side"] != "native" else None
        r["verdict"] = _verdict(r["ratio"], r["target"])
        if r["target"] is not None and r["ratio"] is None:
            r["verdict"] = "MISS"  # a side that failed to run misses its target
        if r["verdict"] == "MISS":
            misses.append(
                {
                    "what": "time",
                    "backend": r["backend"],
                    "family": r["family"],
                    "size": r["size"],
                    "exec": r["exec"],
                    "pass": r["pass"],
                    "side": r["side"],
                    "value": r["ratio"],
                    "target": r["target"],
                    "error": r.get("error", ""),
                }
            )
    native_mem = {(m["backend"], m["exec"]): m for m in report["memory"] if m["side"] == "native"}
    for m in report["memory"]:
        native = native_mem.get((m["backend"], m["exec"]))
        m["ratio"] = None
        if m["side"] != "native" and native and native.get("peak_bytes"):
            m["ratio"] = m["peak_bytes"] / native["peak_bytes"]
        m["target"] = MEMORY_RATIO if m["side"] != "native" else None
        m["verdict"] = _verdict(m["ratio"], m["target"])
        if m["verdict"] == "MISS":
            misses.append(
                {
                    "what": "memory",
                    "backend": m["backend"],
                    "family": m["family"],
                    "size": m["size"],
                    "exec": m["exec"],
                    "pass": m["pass"],
                    "side": m["side"],
                    "value": m["ratio"],
                    "target": m["target"],
                    "error": "",
                }
            )
    for n in report["namespace"]:
        n["target_s"] = NAMESPACE_S if n["call"] == NAMESPACE_CALL else None
        n["verdict"] = _verdict(n["median_s"], n["target_s"])
        if n["verdict"] == "MISS":
            misses.append(
                {
                    "what": "namespace",
                    "backend": n["backend"],
                    "family": "",
                    "size": "",
                    "exec": "",
                    "pass": "",
                    "side": n["call"],
                    "value": n["median_s"],
                    "target": n["target_s"],
                    "error": "",
                }
            )
    report["misses"] = misses
    report["targets"] = describe()
    counted = (
        [r for r in report["rows"] if r["verdict"]]
        + [m for m in report["memory"] if m["verdict"]]
        + [n for n in report["namespace"] if n["verdict"]]
    )
    report["summary"] = {
        "judged": len(counted),
        "pass": sum(c["verdict"] == "PASS" for c in counted),
        "miss": len(misses),
        "value_check_problems": sum(bool(c["problem"]) for c in report["checks"]),
        "errors": len(report["errors"]) + sum(bool(r.get("error")) for r in report["rows"]),
    }
    return report

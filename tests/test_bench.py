"""``polyloss bench``: the registry, the command on a tiny configuration, its JSON / CSV / results
file formats, and the target verdicts. No test asserts a time: benchmarks, never timed tests.

The command runs its workers in subprocesses (one per framework), as it does for real.
"""

from __future__ import annotations

import csv
import io
import json

import pytest
from conftest import INSTALLED_NAMES

from polyloss.bench import registry, targets
from polyloss.bench.drivers import installed_backends
from polyloss.bench.report import CSV_COLUMNS, load_json
from polyloss.bench.timing import interleaved
from polyloss.cli import main

BENCH_BACKENDS = [b for b in installed_backends() if b in INSTALLED_NAMES]
FAMILIES = registry.load_families()


def _run(capsys, *args: str) -> tuple[int, str]:
    code = main(["bench", "--quiet", *args])
    return code, capsys.readouterr().out


# ---- the registry (no framework imported) ----------------------------------------------------


def test_every_family_is_registered_or_excused_on_every_backend():
    assert {"mse", "l1", "huber", "bce_logits", "ce", "ce_smooth", "ce_weighted", "focal", "kl", "ctc",
            "dice"} <= set(FAMILIES)
    for name, fam in FAMILIES.items():
        assert fam.sizes, name
        for backend in registry.BACKENDS:
            declared = fam.backends.get(backend)
            if declared is None:
                assert fam.missing.get(backend), f"{name} on {backend}: neither registered nor excused"
                continue
            assert set(declared.labels) >= {"native", "polyloss"}, (name, backend)
            assert "mirror" in declared.labels or declared.no_mirror, (name, backend)
            assert set(declared.same_value) <= set(declared.labels), (name, backend)
            if backend == "numpy":  # NumPy has no losses: its natives are hand-written references
                assert declared.kind == "reference", name
    # every framework with a mirror namespace has it on the main families
    for backend in ("torch", "tensorflow", "mxnet", "jax"):
        assert "mirror" in FAMILIES["ce"].backends[backend].labels


def test_the_target_sizes_are_there():
    ce = {s.name: s for s in FAMILIES["ce"].sizes}
    assert set(ce) == {"8x10", "4096x10", "65536x10", "4096x1000"}
    assert ce["8x10"].target_class == "small" and ce["4096x1000"].target_class == "large"
    for name in ("mse", "l1", "huber", "bce_logits", "focal", "kl"):
        assert [s.batch for s in FAMILIES[name].sizes] == [8, 4096, 65536], name


def test_registration_errors_name_the_problem():
    fam = registry.Family("scratch", "a family made here", (registry.rows(8),), lambda s, r: {})
    with pytest.raises(ValueError, match="no_mirror"):
        fam.on("torch", native="n", polyloss="p", mirror=None)
    with pytest.raises(ValueError, match="unknown backend"):
        fam.on("theano", native="n", polyloss="p", mirror="m")
    fam.on("torch", native="n", polyloss="p", mirror="m")(lambda d, x: {})
    with pytest.raises(ValueError, match="twice"):
        fam.on("torch", native="n", polyloss="p", mirror="m")(lambda d, x: {})
    assert "scratch" not in FAMILIES  # a Family made directly is not registered


# ---- the command ------------------------------------------------------------------------------


def test_quick_run_json_and_results_file(capsys, tmp_path):
    backends = [b for b in ("numpy", "torch") if b in BENCH_BACKENDS]
    args = [x for b in backends for x in ("--backend", b)]
    results = tmp_path / "bench-results.md"
    code, out = _run(capsys, "--quick", *args, "--family", "mse", "--family", "ce", "--json",
                     "--write-results", str(results))
    assert code == 0
    report = json.loads(out)
    assert report["schema"] == "polyloss-bench/1"
    assert report["config"]["backends"] == backends and report["config"]["quick"] is True
    assert {"cpu", "cores", "memory_gib", "python"} <= set(report["machine"])
    assert report["versions"]["numpy"] and report["date"]
    assert set(report["threads"]) == set(backends)
    assert not report["errors"] and not [c for c in report["checks"] if c["problem"]]
    for backend in backends:
        passes = ("fwd",) if backend == "numpy" else ("fwd", "fwd+bwd")
        sides = ("native", "polyloss") if backend == "numpy" else ("native", "polyloss", "mirror")
        for family in ("mse", "ce"):
            rows = {(r["pass"], r["side"]): r for r in report["rows"]
                    if r["backend"] == backend and r["family"] == family}
            assert set(rows) == {(p, s) for p in passes for s in sides}, (backend, family)
            for (pass_, side), r in rows.items():
                assert r["size"] == "8x10" and r["exec"] == "eager" and not r["error"]
                assert r["median_s"] > 0 and r["repeats"] == 3
                if side == "native":
                    assert r["ratio"] is None
                else:
                    # the JSON keeps 4 significant digits
                    expected = r["median_s"] / rows[(pass_, "native")]["median_s"]
                    assert r["ratio"] == pytest.approx(expected, rel=2e-3)
        # batch 8 is judged on torch and NumPy, on the forward+backward (NumPy: forward) pass
        judged = [r for r in report["rows"] if r["backend"] == backend and r["verdict"]]
        assert judged and all(r["target"] == 1.3 and r["pass"] == passes[-1] for r in judged)
    assert {n["backend"] for n in report["namespace"]} == set(backends)
    assert report["summary"]["judged"] == sum(bool(r["verdict"]) for r in report["rows"]) + len(backends)

    text = results.read_text()
    for needle in ("# polyloss bench results", "- date:", "- machine:", "- versions:", "- threads:",
                   "## Targets", "## Namespace resolution", "## Time per call", "| family | size |"):
        assert needle in text, needle
    saved = load_json(results.with_suffix(".json").read_text())
    assert [{k: v for k, v in r.items() if k != "impl"} for r in saved["rows"]] == report["rows"]
    assert saved["command"].startswith("polyloss bench")
    # what each side calls is stored once per backend and family, and restored on every row
    assert {r["impl"] for r in saved["rows"] if r["side"] == "native" and r["backend"] == "torch"} <= {
        "F.mse_loss", "F.cross_entropy"}

    # the saved report re-renders as CSV and as the table, without measuring again
    code, out = _run(capsys, "--from-json", str(results.with_suffix(".json")), "--csv")
    assert code == 0
    table = list(csv.DictReader(io.StringIO(out)))
    assert tuple(table[0]) == CSV_COLUMNS
    assert sum(r["section"] == "time" for r in table) == len(report["rows"])
    assert sum(r["section"] == "namespace" for r in table) == len(report["namespace"])
    code, out = _run(capsys, "--from-json", str(results.with_suffix(".json")))
    assert code == 0 and f"== {backends[-1]}" in out and "Namespace resolution" in out


@pytest.mark.parametrize("backend", BENCH_BACKENDS)
def test_every_side_computes_its_natives_value(capsys, backend):
    """Build every family on ``backend`` at its first size and compare the sides' forward values
    (mirrors must equal their native; the canonical side too where it computes the same)."""
    code, out = _run(capsys, "--check-only", "--quick", "--backend", backend, "--json")
    report = json.loads(out)
    assert not report["errors"], report["errors"]
    problems = [c for c in report["checks"] if c["problem"]]
    assert not problems, problems
    checked = {c["family"] for c in report["checks"]}
    assert checked == {name for name, fam in FAMILIES.items() if backend in fam.backends}
    for c in report["checks"]:
        declared = FAMILIES[c["family"]].backends[backend]
        assert set(c["values"]) == set(declared.labels)
    assert code == 0


def test_unknown_family_is_an_error(capsys):
    code = main(["bench", "--quiet", "--family", "no_such_loss", "--backend", "numpy"])
    assert code == 2 and "no_such_loss" in capsys.readouterr().err


# ---- verdicts and timing mechanics (no real measurement) ----------------------------------------


def _row(backend, size, target_class, exec_, pass_, side, median, kind="native"):
    return {"backend": backend, "family": "f", "size": size, "target_class": target_class, "exec": exec_,
            "pass": pass_, "side": side, "median_s": median, "kind": kind if side == "native" else "polyloss"}


def test_judge_applies_the_targets():
    rows = [
        _row("torch", "4096x10", "large", "compiled", "fwd+bwd", "native", 1.0),
        _row("torch", "4096x10", "large", "compiled", "fwd+bwd", "polyloss", 1.05),  # PASS at <= 1.10
        _row("torch", "4096x10", "large", "compiled", "fwd+bwd", "mirror", 1.2),  # MISS
        _row("torch", "4096x10", "large", "compiled", "fwd", "native", 1.0),
        _row("torch", "4096x10", "large", "compiled", "fwd", "polyloss", 3.0),  # fwd: reported, not judged
        _row("tensorflow", "8x10", "small", "eager", "fwd+bwd", "native", 1.0),
        _row("tensorflow", "8x10", "small", "eager", "fwd+bwd", "polyloss", 2.0),  # batch 8: torch/NumPy only
        _row("numpy", "8x10", "small", "eager", "fwd", "native", 1.0, kind="reference"),
        _row("numpy", "8x10", "small", "eager", "fwd", "polyloss", 1.25),  # NumPy: forward judged, PASS
        _row("jax", "4096x10", "large", "eager", "fwd+bwd", "native", 1.0, kind="reference"),
        _row("jax", "4096x10", "large", "eager", "fwd+bwd", "polyloss", 5.0),  # not judged (reference)
    ]
    memory = [{"backend": "mxnet", "exec": "eager", "side": "native", "peak_bytes": 100, "family": "ce",
               "size": "4096x1000", "pass": "fwd+bwd"},
              {"backend": "mxnet", "exec": "eager", "side": "mirror", "peak_bytes": 130, "family": "ce",
               "size": "4096x1000", "pass": "fwd+bwd"}]
    namespace = [{"backend": "torch", "call": "backend_of(x)", "median_s": 0.05e-6, "min_s": 0.04e-6},
                 {"backend": "torch", "call": "backend_of(x, y, None)", "median_s": 0.5e-6, "min_s": 0.4e-6}]
    report = targets.judge({"rows": rows, "memory": memory, "namespace": namespace, "checks": [],
                            "errors": []})
    verdicts = [r["verdict"] for r in rows]
    assert verdicts == ["", "PASS", "MISS", "", "", "", "", "", "PASS", "", ""]
    assert rows[2]["ratio"] == pytest.approx(1.2) and rows[2]["target"] == 1.10
    assert memory[1]["verdict"] == "MISS" and memory[1]["ratio"] == pytest.approx(1.3)
    assert [n["verdict"] for n in namespace] == ["PASS", ""]
    assert [(m["what"], m["side"]) for m in report["misses"]] == [("time", "mirror"), ("memory", "mirror")]
    assert report["summary"] == {"judged": 5, "pass": 3, "miss": 2, "value_check_problems": 0, "errors": 0}


def test_interleaved_reports_a_failing_step_and_times_the_others():
    calls = {"ok": 0}

    def ok():
        calls["ok"] += 1

    def broken():
        raise RuntimeError("no kernel for this dtype")

    stats = interleaved({"ok": ok, "broken": broken}, repeats=3, min_time=1e-4, warmup=1)
    assert stats["broken"].error == "RuntimeError: no kernel for this dtype"
    assert stats["broken"].median_s is None
    assert stats["ok"].repeats == 3 and stats["ok"].median_s > 0
    assert calls["ok"] >= 2 + 3 * stats["ok"].calls

"""``polyloss parity`` as a user runs it: exit status, the JSON schema, the report directory, the
dtype and device axes, worker processes, and the deliberate-differences list.

Each test runs the command on a small filter (the full matrix is run by CI itself).
"""

from __future__ import annotations

import json
import struct
import sys
import zlib

import numpy as np
import pytest
from conftest import INSTALLED_NAMES

from polyloss import cli
from polyloss.parity import differences, report, schema
from polyloss.parity import run as runner
from polyloss.parity.backends import BACKENDS, gpu_present
from polyloss.parity.cases import ALL_CASES, Case

# torch (when installed) is the fastest autograd backend to run a filter on
_FAST = ["--backend", "numpy"] + (["--backend", "torch"] if "torch" in INSTALLED_NAMES else [])
_SMALL = ["parity", "--convention", "polyloss", "--loss", "mse", "--no-progress", *_FAST]


def _wrong_mse(m, p, t, w):
    # a deliberately wrong loss: 1% off on every backend but the float64 NumPy oracle
    out = m.mse(p, t)
    return out if isinstance(p, np.ndarray) and p.dtype == np.float64 else out * 1.01


def test_exit_status_zero_on_a_passing_filter_with_every_dtype(capsys):
    status = cli.main(_SMALL)
    out = capsys.readouterr().out
    assert status == 0, out
    assert "All cells within tolerance." in out
    for dtype in ("float32", "float64", "float16"):
        assert dtype in out
    if "torch" in INSTALLED_NAMES:
        assert "bfloat16" in out


def test_exit_status_nonzero_when_a_cell_fails(monkeypatch, capsys):
    monkeypatch.setattr(runner, "ALL_CASES", [Case("mse", "wrong mse", "polyloss", _wrong_mse)])
    status = cli.main(["parity", "--no-progress", "--dtype", "float32", *_FAST])
    out = capsys.readouterr().out
    assert status == 1
    assert "out of tolerance" in out and "wrong mse" in out and "FAIL" in out


def test_exit_status_nonzero_when_a_backend_fails_to_import(monkeypatch, capsys):
    name = "torch" if "torch" in INSTALLED_NAMES else "numpy"

    def broken_setup():
        raise ImportError(f"{name} is broken here")

    monkeypatch.setattr(BACKENDS[name], "setup", broken_setup)
    monkeypatch.setattr(BACKENDS[name], "asarray", lambda a, device="cpu": broken_setup())
    status = cli.main(["parity", "--convention", "polyloss", "--loss", "mae", "--dtype", "float32",
                       "--no-progress", "--backend", name])
    out = capsys.readouterr().out
    assert status == 1
    assert f"{name} is broken here" in out


def test_exit_status_nonzero_for_a_backend_that_cannot_run(capsys):
    missing = next(n for n, b in BACKENDS.items() if not b.available())
    status = cli.main(["parity", "--backend", missing, "--loss", "mse", "--no-progress"])
    assert status == 1
    assert f"backend {missing} cannot run here" in capsys.readouterr().err


def test_json_matches_its_schema(capsys):
    status = cli.main([*_SMALL, "--json", "--loss", "huber"])
    data = json.loads(capsys.readouterr().out)
    assert status == 0 and data["ok"] is True
    assert schema.validate(data) == []
    assert data["failures"] == 0 and data["cells"] == len(data["results"]) > 0
    assert {r["convention"] for r in data["results"]} == {"polyloss"}
    assert {r["family"] for r in data["results"]} == {"mse", "huber"}
    assert set(data["backends"]) == {b for b in INSTALLED_NAMES if b in _FAST}
    assert set(data["environment"]["frameworks"]) >= {"numpy", "torch", "jax", "tensorflow", "mxnet"}
    assert data["environment"]["frameworks"]["numpy"] == np.__version__
    assert {d["id"] for d in data["deliberate_differences"]} == set(differences.BY_ID)
    # JSON has no inf: a failed cell's error is the string "inf"
    row = dict(data["results"][0], value_err="inf", value_ratio="inf", ok=False)
    assert schema.validate(row, schema.RESULT_SCHEMA) == []


def test_schema_validator_finds_what_is_wrong():
    good = {"schema_version": 1}
    errors = schema.validate(good)
    assert any("missing 'results'" in e for e in errors)
    row = {k: "x" for k in schema.RESULT_SCHEMA["required"]}
    errors = schema.validate(row, schema.RESULT_SCHEMA)
    assert any("$.ok: expected boolean" in e for e in errors)
    assert any("$.dtype" in e for e in errors)
    assert schema.validate({"value_err": -1.0}, {"properties": {"value_err": schema._ERROR}})
    assert schema.validate(dict.fromkeys(schema.SKIP_SCHEMA["required"], ""), schema.SKIP_SCHEMA)


def _png_size(path) -> tuple[int, int]:
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    width, height = struct.unpack(">II", data[16:24])
    crc = struct.unpack(">I", data[29:33])[0]
    assert crc == zlib.crc32(data[12:29])
    assert data.rstrip(b"\x00").endswith(b"IEND\xaeB`\x82")
    return width, height


def test_report_writes_the_page_the_heatmap_and_the_json(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out_dir = tmp_path / "out"
    status = cli.main([*_SMALL, "--report", str(out_dir)])
    capsys.readouterr()
    assert status == 0
    width, height = _png_size(out_dir / "heatmap.png")
    assert width > 100 and height > 50
    page = (out_dir / "index.html").read_text()
    assert "<img src='heatmap.png'" in page
    for case in (c for c in ALL_CASES if c.convention == "polyloss" and c.family == "mse"):
        assert f"<code>{case.label}</code>" in page.replace("&#x27;", "'")
    for b in (b for b in INSTALLED_NAMES if b in _FAST):
        assert f"<th>{b}<br>cpu</th>" in page
    assert "bfloat16" in page and "zero_residual" in page
    assert "Tolerance policy" in page and "Environment" in page and np.__version__ in page
    assert "Documented deliberate differences" in page
    assert all(f"<code>{d.id}</code>" in page for d in differences.DIFFERENCES)
    if gpu_present() is not None:
        assert "no NVIDIA GPU" in page  # the device axis, reported as skipped
    data = json.loads((out_dir / "parity.json").read_text())
    assert schema.validate(data) == []


def test_report_without_matplotlib_still_writes_the_page(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    status = cli.main([*_SMALL, "--dtype", "float64", "--report", str(tmp_path)])
    err = capsys.readouterr().err
    assert status == 0
    assert "matplotlib is not installed" in err
    assert not (tmp_path / "heatmap.png").exists()
    assert "matplotlib is not installed" in (tmp_path / "index.html").read_text()


def test_cuda_is_skipped_with_its_reason_without_a_gpu(capsys):
    if gpu_present() is None:
        pytest.skip("a GPU is present: cuda cells run")
    status = cli.main([*_SMALL, "--json", "--dtype", "float32"])
    data = json.loads(capsys.readouterr().out)
    assert status == 0
    cuda = [s for s in data["skipped"] if s["device"] == "cuda"]
    gpu_backends = {b for b in data["backends"] if "cuda" in BACKENDS[b].devices}
    assert {s["backend"] for s in cuda} == gpu_backends
    assert all("no NVIDIA GPU" in s["reason"] for s in cuda)
    assert {r["device"] for r in data["results"]} == {"cpu"}
    # asking for cuda alone runs nothing, which is not a pass
    assert cli.main([*_SMALL, "--device", "cuda"]) == 1


def test_low_precision_cells_and_their_tolerances(capsys):
    status = cli.main([*_SMALL, "--json", "--dtype", "float16", "--dtype", "bfloat16"])
    data = json.loads(capsys.readouterr().out)
    assert status == 0
    rows = data["results"]
    assert {r["dtype"] for r in rows} == ({"float16", "bfloat16"} if "torch" in INSTALLED_NAMES
                                         else {"float16"})
    assert all(r["out_dtype"] == r["dtype"] == r["expected_dtype"] for r in rows)
    # polyloss computes in float32 and rounds once: float32's tolerance plus half an ulp
    n = 24
    assert runner.rounded_tolerance("float16", n) == pytest.approx(
        runner.tolerance("float32", n) + 2.0 ** -11)
    assert runner.rounded_tolerance("bfloat16", n) == pytest.approx(
        runner.tolerance("float32", n) + 2.0 ** -8)
    assert all(r["tol"] == pytest.approx(runner.rounded_tolerance(r["dtype"], 24))
               for r in rows if r["input"] != "batch1")
    # the inputs are the float64 values rounded once, bit for bit the same for every backend
    case = next(c for c in ALL_CASES if c.label == "polyloss.mse(pred, target)")
    x16 = runner.make_inputs(case, None, "bfloat16")[0]
    x64 = runner.make_inputs(case, None, "float64")[0]
    assert x16.dtype.name == "bfloat16"
    np.testing.assert_array_equal(x16, x64.astype(x16.dtype))


def test_worker_processes_give_the_same_cells(capsys):
    args = ["--convention", "polyloss", "--loss", "mae", "--dtype", "float32", "--dtype", "float16"]
    one = runner.run_matrix(backends=["numpy"], conventions=["polyloss"], losses=["mae"],
                            dtypes=["float32", "float16"], jobs=1)
    status = cli.main(["parity", *args, "--backend", "numpy", "--json", "--jobs", "2"])
    data = json.loads(capsys.readouterr().out)
    assert status == 0 and data["jobs"] == 2
    key = ("convention", "loss", "backend", "device", "dtype", "input")
    in_workers = {tuple(r[k] for k in key): r["value_err"] for r in data["results"]}
    in_process = {(r.case.convention, r.case.label, r.backend, r.device, r.dtype, r.edge): r.value_err
                  for r in one.results}
    assert in_workers == in_process


def test_progress_on_a_pipe_is_a_few_lines(capsys):
    status = cli.main(["parity", "--convention", "polyloss", "--loss", "mse", "--backend", "numpy",
                       "--dtype", "float64"])
    err = capsys.readouterr().err
    assert status == 0
    lines = [line for line in err.splitlines() if line.startswith("polyloss parity:")]
    assert 2 <= len(lines) <= 11 and "100%" in lines[-1]
    assert "\r" not in err


def test_every_case_names_documented_differences_and_the_docs_hold_the_list():
    for case in ALL_CASES:
        for i in case.differences:
            assert i in differences.BY_ID, (case.label, i)
    used = {i for c in ALL_CASES for i in c.differences}
    for d in differences.DIFFERENCES:
        if d.in_matrix and not d.every_case:
            assert d.id in used, f"{d.id} changes comparisons but no case names it"
        assert d.native and d.polyloss and d.why and d.convention and d.loss
    from pathlib import Path

    page = (Path(__file__).parent.parent / "docs" / "conventions.md").read_text()
    assert differences.render_markdown() in page, (
        "docs/conventions.md is out of date: paste the output of python -m polyloss.parity.differences")


def test_table_reports_skips_and_differences(capsys):
    status = cli.main([*_SMALL, "--dtype", "bfloat16"])
    out = capsys.readouterr().out
    assert status == 0
    assert "Skipped:" in out and "numpy bfloat16: numpy has no bfloat16" in out
    assert "Documented deliberate differences:" in out
    assert report.TOLERANCE_POLICY["float64"] == "1e-12"

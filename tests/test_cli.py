"""The ``polyloss parity`` command: table, JSON, filters, exit status."""

from __future__ import annotations

import json

import numpy as np
from conftest import INSTALLED_NAMES

from polyloss import cli
from polyloss.parity import run as runner
from polyloss.parity.cases import Case


def test_parity_table_passes_and_counts_cases(capsys):
    status = cli.main(["parity", "--loss", "huber", "--dtype", "float32", "--dtype", "float64",
                       "--jobs", "1"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "cells on" in out
    for name in INSTALLED_NAMES:
        assert name in out
    assert "All cells within tolerance." in out


def test_parity_json_schema_and_filters(capsys):
    status = cli.main(["parity", "--json", "--convention", "polyloss", "--loss", "mse",
                       "--dtype", "float64"])
    data = json.loads(capsys.readouterr().out)
    assert status == 0
    assert data["failures"] == 0 and data["cases"] == len(data["results"]) > 0
    row = data["results"][0]
    assert set(row) >= {"convention", "loss", "backend", "dtype", "input", "reference",
                        "value_err", "grad_err", "tol", "ok"}
    assert {r["convention"] for r in data["results"]} == {"polyloss"}
    assert {r["dtype"] for r in data["results"]} == {"float64"}
    assert set(data["backends"]) == set(INSTALLED_NAMES)


def test_parity_fails_on_a_wrong_loss(monkeypatch, capsys):
    # a deliberately wrong case: the "oracle" side and the backends disagree by 1%
    def wrong(m, p, t, w):
        out = m.mse(p, t)
        return out * 1.01 if isinstance(p, np.ndarray) and p.dtype == np.float64 else out

    monkeypatch.setattr(runner, "ALL_CASES", [Case("mse", "wrong mse", "polyloss", wrong)])
    status = cli.main(["parity", "--dtype", "float32"])
    out = capsys.readouterr().out
    assert status == 1
    assert "out of tolerance" in out and "wrong mse" in out


def test_relative_error_rules():
    assert runner.relative_error([1.0, np.nan, np.inf], [1.0, np.nan, np.inf]) == 0.0
    assert runner.relative_error([1.0], [2.0]) == 0.5
    assert runner.relative_error([np.nan], [1.0]) == np.inf
    assert runner.relative_error([1.0, 2.0], [1.0]) == np.inf  # shape mismatch
    assert runner.relative_error([1e-20], [0.0], floor=1.0) == 1e-20
    assert runner.tolerance("float64", 1000) == 1e-12
    assert runner.tolerance("float32", 1) == 8 * np.finfo(np.float32).eps

"""The bad-input table, row by row and backend by backend (the rows live in ``_bad_input.py``,
which also renders the table in docs/reliability.md).

Each test spoils the valid inputs of every canonical loss and convention mirror the row
applies to (the calls of ``polyloss.parity.cases``), runs them on one backend and checks the
outcome the row states: a ``ValueError``/``TypeError`` raised by polyloss whose message names
an argument of the call and the actual value or shape, a NaN, the native's own result, ...
On JAX and Dask the rows that compute every call use one canonical call per loss family (a
first call per shape is slow there); ``python tests/_bad_input.py`` runs everything.
"""

from __future__ import annotations

import pathlib

import numpy as np
import pytest
from _bad_input import BACKEND_COLUMNS, ROWS, TABLE_BEGIN, TABLE_END, cases_for, problems, render_table
from conftest import INSTALLED_NAMES, require

import polyloss

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs" / "reliability.md"


@pytest.mark.parametrize("row", ROWS, ids=[r.key for r in ROWS])
def test_row(row, backend):
    if all(row.expected(c, backend.name) == "n/a" for c in row.cases()):
        pytest.skip(f"{row.key} does not apply on {backend.name}")
    found = []
    for case in cases_for(row, backend.name):
        found += problems(row, case, backend)
    assert not found, f"{len(found)} calls depart from the row:\n" + "\n".join(found)


def test_every_row_has_its_cases_and_every_backend_a_column():
    for row in ROWS:
        assert row.cases(), f"row {row.key} selects no call"
    assert set(INSTALLED_NAMES) <= set(BACKEND_COLUMNS)


def test_the_docs_hold_the_current_table():
    text = DOCS.read_text()
    start, end = text.index(TABLE_BEGIN), text.index(TABLE_END) + len(TABLE_END)
    assert text[start:end] == render_table(), (
        "docs/reliability.md is out of date: paste the output of `python tests/_bad_input.py "
        "--table` between the markers")


# ---- the value-check switch itself ---------------------------------------------------------------

def test_value_checks_switch_is_scoped_and_restored():
    logits, labels = np.zeros((2, 3)), np.array([0, 3])
    with pytest.raises(ValueError, match=r"outside \[0, 3\)"):
        polyloss.cross_entropy(logits, labels)
    with polyloss.value_checks(False):
        out = polyloss.cross_entropy(logits, labels, reduction="none")
        with polyloss.value_checks(True):  # nested: the inner block wins, then the outer is back
            with pytest.raises(ValueError):
                polyloss.cross_entropy(logits, labels)
        out2 = polyloss.cross_entropy(logits, labels, reduction="none")
    # by hand: log 3 for the valid label, NaN for the one outside [0, 3)
    np.testing.assert_allclose(out[0], np.log(3.0), rtol=1e-15)
    assert np.isnan(out[1]) and np.isnan(out2[1])
    with pytest.raises(ValueError):  # restored after the block
        polyloss.cross_entropy(logits, labels)


def test_value_checks_switch_ends_with_an_exception():
    with pytest.raises(RuntimeError), polyloss.value_checks(False):
        raise RuntimeError
    with pytest.raises(ValueError):
        polyloss.nll(np.zeros((2, 3)), np.array([0, 5]))


@pytest.mark.parametrize("bad", [0, 1, None, "no"])
def test_value_checks_takes_a_bool(bad):
    with pytest.raises(TypeError, match="value_checks"), polyloss.value_checks(bad):
        pass


def test_value_checks_switch_covers_the_mirrors():
    torch_backend = require("torch")
    import polyloss.torch as pt

    logits = torch_backend.asarray(np.zeros((2, 3)))
    labels = torch_backend.asarray(np.array([0, 3]))
    with pytest.raises(ValueError, match="target"):
        pt.CrossEntropyLoss(reduction="none")(logits, labels)
    with polyloss.value_checks(False):
        out = torch_backend.to_numpy(pt.CrossEntropyLoss(reduction="none")(logits, labels))
    assert np.isnan(out[1]) and out[0] == pytest.approx(np.log(3.0), rel=1e-15)

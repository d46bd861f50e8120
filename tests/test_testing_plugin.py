"""The pytest plugin (``polyloss.pytest_plugin``) running a small user test suite.

The run across frameworks is a subprocess that finds the plugin only through the ``pytest11``
entry point declared in ``pyproject.toml``: pytester's in-process runs drop the modules they
imported when they end, and importing a framework's C extensions a second time crashes. The
in-process runs below therefore touch NumPy only.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import INSTALLED_NAMES

import polyloss.pytest_plugin  # noqa: F401 - imported here once, not by each in-process run
import polyloss.testing  # noqa: F401
from polyloss.parity.backends import BACKENDS

pytest_plugins = ("pytester",)

ROOT = Path(__file__).resolve().parents[1]

USER_SUITE = '''
import numpy as np
import pytest

import polyloss


@polyloss.custom_loss
def pseudo_huber(pred, target, *, xp, delta=1.0):
    s = (pred - target) / delta
    return delta**2 * (s * s) / (xp.sqrt(1 + s * s) + 1)


@polyloss.custom_loss
def naive_abs(pred, target, *, xp):
    return xp.abs(pred - target)  # JAX's gradient at 0 is 1, the others' 0


@polyloss.custom_loss
def naive_pseudo_huber(pred, target, *, xp):
    return xp.sqrt(1 + (pred - target) ** 2) - 1  # cancels in float32 for small residuals


def make_inputs(rng, dtype):
    pred, target = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    target[0, 0] = pred[0, 0]
    return pred, target


def small_residuals(rng, dtype):
    pred = rng.normal(size=(8,))
    return pred, pred + 1e-3 * rng.normal(size=(8,))


@pytest.mark.polyloss_parity(dtypes=("float64",), compiled=False)
def test_pseudo_huber(polyloss_parity):
    polyloss_parity(pseudo_huber, make_inputs)


@pytest.mark.polyloss_parity(dtypes=("float64",), compiled=False)
def test_naive_abs(polyloss_parity):
    polyloss_parity(naive_abs, make_inputs)


@pytest.mark.polyloss_parity(grads=False)
@pytest.mark.parametrize("loss", [pseudo_huber, naive_pseudo_huber])
def test_small_residuals_per_element(polyloss_parity, loss):
    polyloss_parity(lambda p, t: loss(p, t, reduction="none"), small_residuals, name=loss.__name__)


def test_zero_at_a_perfect_fit(polyloss_backend):
    x = polyloss_backend.asarray(np.ones(3))
    assert polyloss_backend.to_numpy(pseudo_huber(x, x)) == 0
'''


def _registered() -> bool:
    return any(ep.value == "polyloss.pytest_plugin"
               for ep in importlib.metadata.entry_points(group="pytest11"))


def _run(pytester, *args):
    # an environment installed before the entry point existed has not registered it yet
    plugin = [] if _registered() else ["-p", "polyloss.pytest_plugin"]
    return pytester.runpytest(*plugin, "-p", "no:cacheprovider", "-p", "no:xdist", *args)


def _missing() -> str:
    missing = [n for n, b in BACKENDS.items() if not b.available()]
    if not missing:
        pytest.skip("every backend is installed here")
    return missing[0]


@pytest.fixture
def suite(pytester, monkeypatch):
    monkeypatch.delenv("POLYLOSS_BACKENDS", raising=False)
    pytester.makepyfile(test_user_losses=USER_SUITE)
    return pytester


def test_the_entry_point_runs_the_suite_across_backends(suite, monkeypatch):
    if not {"torch", "jax"} <= set(INSTALLED_NAMES):
        pytest.skip("needs torch (the gradient reference) and JAX")
    tomllib = pytest.importorskip("tomllib")
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]
    assert declared["pytest11"] == {"polyloss": "polyloss.pytest_plugin"}
    if not _registered():  # a minimal dist-info with the same declaration stands in for it
        info = suite.path / "site" / "polyloss_plugin_check-0.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: polyloss-plugin-check\n"
                                       "Version: 0\n")
        (info / "entry_points.txt").write_text("[pytest11]\npolyloss = polyloss.pytest_plugin\n")
        monkeypatch.setenv("PYTHONPATH", str(info.parent))
    result = suite.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:xdist",
                                        "-k", "not small_residuals",
                                        "--polyloss-backends=numpy,torch,jax")
    # pseudo_huber and the fixture test pass on all three, naive_abs on numpy and torch; JAX's
    # |x|' at 0 (1, where the torch reference and the finite difference give 0) fails its item
    result.assert_outcomes(passed=8, failed=1)
    result.stdout.fnmatch_lines([
        "*FAILED test_user_losses.py::test_naive_abs[[]jax[]]*",
    ])
    out = result.stdout.str()
    assert "parity of naive_abs: 1 of 3 checks failed" in out  # value, gradient, finite diff.
    assert "jax      float64  eager  grad[0]   (0, 0)       0.0833333  0         1" in out


def test_marker_options_and_a_float32_failure_report(suite):
    result = _run(suite, "-k", "small_residuals", "--polyloss-backends=numpy")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*FAILED test_user_losses.py::test_small_residuals_per_element[[]numpy-naive_pseudo_huber[]]*",
    ])
    out = result.stdout.str()
    # float32's 1 + r² is exactly 1 for the smallest residual; float64 passes
    assert "parity of naive_pseudo_huber: 1 of 2 checks failed" in out
    assert "numpy    float32  eager  value     (3,)         0       8.54017e-10  1" in out


def test_not_installed_backends_are_skipped_with_the_reason(suite):
    missing = _missing()
    result = _run(suite, "-rs", "-k", f"perfect_fit and (numpy or {missing})")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines([f"SKIPPED*polyloss backend {missing}:*"])


def test_a_backend_requested_but_missing_fails(suite):
    missing = _missing()
    result = _run(suite, "-k", "perfect_fit", f"--polyloss-backends=numpy,{missing}")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines([f"*polyloss backend {missing} was requested explicitly but*"])


def test_marker_misuse_is_a_clear_collection_error(pytester):
    pytester.makepyfile(
        test_typo='import pytest\n\n@pytest.mark.polyloss_parity(dtype="float64")\n'
                  "def test_typo(polyloss_parity):\n    pass\n",
        test_no_fixture="import pytest\n\n@pytest.mark.polyloss_parity()\n"
                        "def test_no_fixture():\n    pass\n",
    )
    result = _run(pytester)
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines_random([
        "*polyloss_parity marker got unknown option(s) dtype; expected among argnums*",
        "*the polyloss_parity marker sets the options of the polyloss_parity fixture; the test "
        "must take that fixture as an argument*",
    ])


def test_loading_the_plugin_imports_no_framework():
    code = textwrap.dedent("""
        import sys
        import polyloss.pytest_plugin
        heavy = ("torch", "jax", "tensorflow", "mxnet", "polyloss.parity", "polyloss.testing")
        print([m for m in heavy if m in sys.modules])
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr

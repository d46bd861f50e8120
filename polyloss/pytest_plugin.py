"""pytest plugin: parity-test your own losses across backends (``docs/testing.md``).

Registered through the ``pytest11`` entry point ``polyloss``, so installing polyloss makes it
available (``-p no:polyloss`` turns it off). Loading it imports no framework and no part of
polyloss's parity machinery; that happens only in a test that uses what it provides:

- fixture ``polyloss_backend``: the test runs once per backend (``test_x[torch]``,
  ``test_x[jax]``, ...), each a ``polyloss.parity.backends.TestBackend`` with ``name``,
  ``asarray(numpy_array)``, ``to_numpy(x)``, ``value_and_grad(fn, arrays, argnum)``,
  ``differentiable``. Backends that are not installed are skipped with the reason.
- fixture ``polyloss_parity``: ``polyloss_parity(fn, make_inputs, **options)`` runs
  :func:`polyloss.testing.assert_parity` on that test's backend (so it too runs once per
  backend); ``options`` override the marker's.
- marker ``@pytest.mark.polyloss_parity(**options)``: default ``assert_parity`` options for
  the ``polyloss_parity`` fixture; ``backends=[...]`` there chooses the backends, and one
  named there that is not installed fails instead of skipping.
- option ``--polyloss-backends=torch,jax`` (or ``$POLYLOSS_BACKENDS``) selects backends;
  one named on the command line that is not installed fails too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

MARKER = "polyloss_parity"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--polyloss-backends", default=None, metavar="NAMES",
        help="polyloss parity tests: comma-separated backends to run (default: "
             "$POLYLOSS_BACKENDS, else every installed one)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(**options): default polyloss.testing.assert_parity options (backends, dtypes, "
        "grads, compiled, argnums, rtol, atol, ...) for the polyloss_parity fixture",
    )


def _split(names: str | None) -> list[str] | None:
    if not names:
        return None
    return [n.strip() for n in names.split(",") if n.strip()] or None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker(MARKER)
    if "polyloss_backend" not in metafunc.fixturenames:
        if marker is not None:
            raise pytest.Collector.CollectError(
                f"{metafunc.definition.nodeid}: the {MARKER} marker sets the options of the "
                f"{MARKER} fixture; the test must take that fixture as an argument")
        return
    from polyloss.parity.backends import BACKENDS
    from polyloss.testing import not_installed_reason, selected_backends

    chosen = _marker_options(marker).get("backends")
    command_line = _split(metafunc.config.getoption("--polyloss-backends"))
    if chosen and command_line:  # the command line narrows the marker's choice
        chosen = [n for n in chosen if n in command_line]
    explicit = list(chosen or command_line or [])
    params = []
    for name in selected_backends(explicit or None):
        backend = BACKENDS[name]
        marks = ()
        if not backend.available() and not explicit:
            marks = (pytest.mark.skip(reason=f"polyloss backend {name}: {not_installed_reason(backend)}"),)
        params.append(pytest.param(name, id=name, marks=marks))
    metafunc.parametrize("polyloss_backend", params, indirect=True)


def _marker_options(marker: pytest.Mark | None) -> dict[str, Any]:
    if marker is None:
        return {}
    if marker.args:
        raise pytest.Collector.CollectError(
            f"the {MARKER} marker takes keyword options only, got {marker.args!r}")
    import inspect

    from polyloss.testing import assert_parity

    known = set(inspect.signature(assert_parity).parameters) - {"fn", "make_inputs"}
    unknown = sorted(set(marker.kwargs) - known)
    if unknown:
        raise pytest.Collector.CollectError(
            f"the {MARKER} marker got unknown option(s) {', '.join(unknown)}; "
            f"expected among {', '.join(sorted(known))}")
    return dict(marker.kwargs)


@pytest.fixture
def polyloss_backend(request: pytest.FixtureRequest) -> Any:
    """One installed backend (the test runs once per backend), set up for use."""
    from polyloss.parity.backends import BACKENDS
    from polyloss.testing import not_installed_reason

    name = getattr(request, "param", None)
    if name is None:
        pytest.fail("polyloss_backend is parametrised by the polyloss pytest plugin; request it "
                    "as a test argument (not through request.getfixturevalue)", pytrace=False)
    backend = BACKENDS[name]
    if not backend.available():
        pytest.fail(f"polyloss backend {name} was requested explicitly but "
                    f"{not_installed_reason(backend)}", pytrace=False)
    backend.setup()
    return backend


@pytest.fixture
def polyloss_parity(request: pytest.FixtureRequest, polyloss_backend: Any) -> Callable[..., Any]:
    """``polyloss_parity(fn, make_inputs, **options)``: ``assert_parity`` on this test's backend,
    with the ``polyloss_parity`` marker's options as defaults."""
    from polyloss.testing import assert_parity

    defaults = _marker_options(request.node.get_closest_marker(MARKER))

    def check(fn: Callable[..., Any], make_inputs: Callable[..., Any], **options: Any) -> Any:
        __tracebackhide__ = True
        merged = {**defaults, **options, "backends": [polyloss_backend.name]}
        return assert_parity(fn, make_inputs, **merged)

    return check


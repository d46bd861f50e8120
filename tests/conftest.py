"""Shared fixtures: the installed backends, each set up once per process.

Select a subset with ``POLYLOSS_BACKENDS=torch,jax`` (comma-separated names from
``polyloss.parity.backends.BACKENDS``).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from polyloss.parity.backends import BACKENDS, available_backends

_SELECTED = [n for n in os.environ.get("POLYLOSS_BACKENDS", "").split(",") if n]
INSTALLED = available_backends(_SELECTED or None)
INSTALLED_NAMES = [b.name for b in INSTALLED]
AUTOGRAD = [b for b in INSTALLED if b.differentiable]
COMPILED = [b for b in INSTALLED if b.compiled]


def backend_params(backends):
    return [pytest.param(b, id=b.name) for b in backends]


@pytest.fixture(params=backend_params(INSTALLED))
def backend(request):
    b = request.param
    b.setup()
    return b


@pytest.fixture(params=backend_params(AUTOGRAD))
def autograd_backend(request):
    b = request.param
    b.setup()
    return b


@pytest.fixture(params=backend_params(COMPILED))
def compiled_backend(request):
    b = request.param
    b.setup()
    return b


@pytest.fixture
def rng():
    return np.random.default_rng(20261122)


def require(name: str):
    """Skip unless backend ``name`` is installed (and selected)."""
    if name not in INSTALLED_NAMES:
        pytest.skip(f"{name} is not installed in this environment")
    b = BACKENDS[name]
    b.setup()
    return b

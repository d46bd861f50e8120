"""Losses called from many threads at once, on different backends.

polyloss's module state is a cache from array type to backend (``polyloss.backends._CACHE``),
the fast-path kernel cache (``polyloss.backends.kernels``), and the value-check switch (a
context variable: per thread). Threads that start together on empty caches and call losses on
NumPy, torch, JAX, TensorFlow and MXNet arrays concurrently must each get exactly the result a
single thread gets, and one thread's ``value_checks(False)`` must not reach another thread.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from conftest import INSTALLED

import polyloss
import polyloss.keras
import polyloss.torch
from polyloss import backends

THREADS_PER_BACKEND = 3
ROUNDS = 4


def _inputs():
    rng = np.random.default_rng(11)
    logits = rng.normal(size=(8, 5))
    labels = rng.integers(0, 5, size=8)
    pred, target = rng.normal(size=(8, 5)), rng.normal(size=(8, 5))
    return logits, labels, pred, target


def _losses(b):
    logits, labels, pred, target = (b.asarray(a) for a in _inputs())
    return [
        lambda: polyloss.cross_entropy(logits, labels, label_smoothing=0.1),
        lambda: polyloss.huber(pred, target, delta=0.5, reduction="none"),
        lambda: polyloss.torch.CrossEntropyLoss(ignore_index=2)(logits, labels),
        lambda: polyloss.keras.mean_squared_error(target, pred),
        lambda: polyloss.focal(logits, labels, kind="categorical"),
    ]


def _fresh_caches(monkeypatch):
    monkeypatch.setattr(backends, "_CACHE", {})
    kernels = getattr(backends, "kernels", None)
    if kernels is not None and isinstance(getattr(kernels, "_GENERIC", None), dict):
        monkeypatch.setattr(kernels, "_GENERIC", {})


def test_concurrent_losses_on_every_backend(monkeypatch):
    for b in INSTALLED:
        b.setup()
    expected = {b.name: [np.asarray(b.to_numpy(f())) for f in _losses(b)] for b in INSTALLED}
    _fresh_caches(monkeypatch)
    workers = [b for b in INSTALLED for _ in range(THREADS_PER_BACKEND)]
    start = threading.Barrier(len(workers))
    failures: list[str] = []

    def work(b):
        calls = _losses(b)
        start.wait()
        try:
            for _ in range(ROUNDS):
                for i, f in enumerate(calls):
                    got = np.asarray(b.to_numpy(f()))
                    if not np.array_equal(got, expected[b.name][i]):
                        failures.append(f"{b.name} call {i}: {got} != {expected[b.name][i]}")
        except Exception as exc:  # reported below with the backend that raised
            failures.append(f"{b.name}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=work, args=(b,)) for b in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a thread did not finish"
    assert not failures, "\n".join(failures[:20])
    # each array type resolved to one backend of its own framework
    for array_type, backend in backends._CACHE.items():
        assert backend.framework in {b.name for b in INSTALLED}, (array_type, backend.framework)


def test_value_checks_switch_is_per_thread():
    logits, labels = np.zeros((2, 3)), np.array([0, 3])  # 3 is outside [0, 3)
    inside, outside = threading.Barrier(2), threading.Barrier(2)
    seen: dict[str, object] = {}

    def unchecked():
        with polyloss.value_checks(False):
            inside.wait()  # the other thread now calls while this one has checks off
            outside.wait()
            seen["unchecked"] = polyloss.cross_entropy(logits, labels, reduction="none")

    def checked():
        inside.wait()
        try:
            polyloss.cross_entropy(logits, labels)
        except ValueError as exc:
            seen["checked"] = exc
        outside.wait()

    threads = [threading.Thread(target=unchecked), threading.Thread(target=checked)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert isinstance(seen.get("checked"), ValueError), seen
    assert np.isnan(seen["unchecked"][1]) and seen["unchecked"][0] == pytest.approx(np.log(3.0))


def test_a_new_thread_starts_with_checks_on():
    seen = []
    with polyloss.value_checks(False):
        t = threading.Thread(target=lambda: seen.append(
            pytest.raises(ValueError, polyloss.nll, np.zeros((1, 2)), np.array([5]))))
        t.start()
        t.join(timeout=60)
    assert len(seen) == 1

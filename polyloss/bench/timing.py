"""Interleaved timing: every step of a group runs in each round, in an order that rotates from
round to round, so that load from outside hits all of them alike; the median per call is kept.

Per step: its first call is timed on its own (for compiled steps it is the compile time), then
``warmup`` more calls, then the number of calls per repeat is calibrated so that a repeat takes
about ``min_time`` seconds; then ``repeats`` rounds. A step whose second call takes longer than
``slow`` seconds is not warmed up further and runs once per repeat, and its group runs at most
``slow_repeats`` rounds (JAX's eager CTC compiles a scan on every call). The garbage collector
is off while timing.
"""

from __future__ import annotations

import gc
import math
import statistics
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

__all__ = ["Stats", "interleaved"]


@dataclass
class Stats:
    median_s: float | None = None
    min_s: float | None = None
    first_s: float | None = None  # the first call (compilation, for compiled steps)
    calls: int = 0  # calls per repeat
    repeats: int = 0
    error: str = ""


def _run(fn: Callable[[], Any], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return time.perf_counter() - start


def _calibrate(fn: Callable[[], Any], min_time: float) -> int:
    n = 1
    while True:
        elapsed = _run(fn, n)
        if elapsed >= min_time / 4 or n >= 1 << 20:
            return max(1, math.ceil(n * min_time / max(elapsed, 1e-9)))
        n *= 4


def interleaved(
    steps: dict[Hashable, Callable[[], Any]],
    *,
    repeats: int,
    min_time: float,
    warmup: int,
    slow: float = 1.0,
    slow_repeats: int = 3,
) -> dict[Hashable, Stats]:
    """Time every step of ``steps`` interleaved; a step that raises is reported, not timed."""
    stats = {key: Stats() for key in steps}
    live: dict[Hashable, Callable[[], Any]] = {}
    loops: dict[Hashable, int] = {}
    gc_was_enabled = gc.isenabled()
    try:
        for key, fn in steps.items():
            try:
                stats[key].first_s = _run(fn, 1)
                if _run(fn, 1) > slow:
                    loops[key] = 1
                    repeats = min(repeats, slow_repeats)
                else:
                    for _ in range(max(warmup - 1, 0)):
                        fn()
                    gc.disable()
                    loops[key] = _calibrate(fn, min_time)
                live[key] = fn
            except Exception as exc:  # a failing side is reported, the others still run
                stats[key].error = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
            finally:
                if gc_was_enabled:
                    gc.enable()
        samples: dict[Hashable, list[float]] = {key: [] for key in live}
        order = list(live)
        gc.disable()
        for r in range(repeats):
            shift = r % len(order) if order else 0
            for key in order[shift:] + order[:shift]:
                samples[key].append(_run(live[key], loops[key]) / loops[key])
    finally:
        if gc_was_enabled:
            gc.enable()
    for key, values in samples.items():
        stats[key].median_s = statistics.median(values)
        stats[key].min_s = min(values)
        stats[key].calls = loops[key]
        stats[key].repeats = len(values)
    return stats

"""``polyloss bench``: polyloss against each framework's native loss, as a time ratio.

Each benchmark times the native loss and polyloss on the same inputs, forward and backward,
in one process: the two are interleaved (native, polyloss, native, ...) so that machine
noise hits both alike, and the medians are compared. Thread counts are fixed and reported.
Only the ratio is meaningful across machines.
"""

from __future__ import annotations

import importlib.util
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Benchmark:
    family: str
    backend: str  # the framework whose arrays both sides run on
    label: str  # what is compared, e.g. "CTCLoss 64x200x30"
    # setup() -> (native_step, polyloss_steps): each step runs forward + backward once
    setup: Callable[[], tuple[Callable[[], Any], dict[str, Callable[[], Any]]]]


@dataclass
class Timing:
    benchmark: Benchmark
    native_s: float
    polyloss_s: dict[str, float]

    def ratio(self, name: str) -> float:
        return self.polyloss_s[name] / self.native_s


# ---- CTC (issue target: within 3x of torch's native CTC on CPU, 64 x 200 steps x 30 classes) ----

def _ctc_torch(n: int = 64, t_max: int = 200, classes: int = 30, longest: int = 40):
    def setup():
        import torch

        import polyloss
        import polyloss.torch as pt

        g = torch.Generator().manual_seed(0)
        logits = torch.randn(t_max, n, classes, generator=g)
        targets = torch.randint(1, classes, (n, longest), generator=g)
        target_lengths = torch.randint(longest // 4, longest + 1, (n,), generator=g)
        input_lengths = torch.full((n,), t_max)

        def step(loss_fn):
            def run():
                x = logits.clone().requires_grad_()
                loss = loss_fn(x)
                loss.backward()
                return loss
            return run

        native = step(lambda x: torch.nn.functional.ctc_loss(
            x.log_softmax(2), targets, input_lengths, target_lengths))
        mirror = step(lambda x: pt.ctc_loss(x.log_softmax(2), targets, input_lengths, target_lengths))
        canonical = step(lambda x: polyloss.ctc(
            x, targets, input_lengths, target_lengths, layout="TNC", normalize_by_length=True))
        return native, {"polyloss.torch": mirror, "polyloss": canonical}

    return Benchmark("ctc", "torch", f"F.ctc_loss {n}x{t_max}x{classes} (S<={longest}), fwd+bwd", setup)


BENCHMARKS: list[Benchmark] = [_ctc_torch()]
_NEEDS = {"torch": "torch"}


def _threads() -> dict[str, int]:
    out = {}
    if importlib.util.find_spec("torch") is not None:
        import torch

        torch.set_num_threads(1)
        out["torch"] = torch.get_num_threads()
    return out


def run(families: list[str] | None = None, repeats: int = 7) -> tuple[list[Timing], dict]:
    """Time every benchmark whose framework is installed; medians over ``repeats`` interleaved
    rounds after one warm-up round."""
    threads = _threads()
    timings = []
    for bench in BENCHMARKS:
        if families and bench.family not in families:
            continue
        if importlib.util.find_spec(_NEEDS[bench.backend]) is None:
            continue
        native, ours = bench.setup()
        steps = {"native": native, **ours}
        samples: dict[str, list[float]] = {name: [] for name in steps}
        for round_ in range(repeats + 1):
            for name, fn in steps.items():
                start = time.perf_counter()
                fn()
                if round_:  # the first round warms caches up
                    samples[name].append(time.perf_counter() - start)
        medians = {name: statistics.median(v) for name, v in samples.items()}
        timings.append(Timing(bench, medians.pop("native"), medians))
    machine = {"machine": platform.machine(), "processor": platform.processor() or platform.machine(),
               "python": platform.python_version(), "numpy": np.__version__, "threads": threads}
    return timings, machine

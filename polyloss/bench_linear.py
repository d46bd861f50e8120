"""Benchmark: linear cross-entropy, blocked (polyloss) against the unfused path, memory and time.

``python -m polyloss.bench_linear [--size 8192x1024x32768] [--frameworks torch,jax,tensorflow]``

One training step is forward + backward w.r.t. both the hidden states ``H`` (N, F) and the
weight ``W`` (C, F), float32, class-index targets, mean reduction. Sides per framework:

- torch: ``F.cross_entropy(H @ W.T, y)`` (unfused), ``F.linear_cross_entropy(H, W, y,
  options=LinearCrossEntropyOptions())`` (torch's own chunked path; ``options=None`` is the
  unfused path), ``polyloss.linear_cross_entropy``, ``polyloss.torch.linear_cross_entropy``;
- JAX (``jax.jit`` of ``jax.value_and_grad``): optax's
  ``softmax_cross_entropy_with_integer_labels(H @ W.T, y).mean()`` (unfused),
  ``polyloss.linear_cross_entropy``;
- TensorFlow (eager, ``GradientTape``): ``tf.nn.sparse_softmax_cross_entropy_with_logits``
  of ``H @ Wᵀ`` (unfused), ``polyloss.linear_cross_entropy``.

Memory: each side runs in a fresh process: the inputs are made (and JAX's step compiled), a tiny
problem warms the framework up, the peak resident set size is reset (``/proc/self/clear_refs``),
and one step runs; the figure is the peak RSS above the RSS before that step (the inputs are
not counted; the gradients are). The first step is measured because TensorFlow's and XLA's
allocators keep what they once held. Exact cross-checks: torch's allocator as seen by
``torch.profiler`` memory events, and XLA's ``compiled.memory_analysis()`` (temporaries +
outputs) for JAX.

Time: per framework, one process; the sides run interleaved (rotating order) for ``--repeats``
rounds after a warm-up round; wall-clock and process CPU time medians are reported, and their
ratios to the unfused side. Benchmarks, never tests: only the ratios mean anything across
machines, and on a shared machine the CPU-time ratio is the steadier one.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

SIDES = {
    "torch": ("unfused", "torch_chunked", "polyloss", "polyloss.torch"),
    "jax": ("unfused", "polyloss"),
    "tensorflow": ("unfused", "polyloss"),
}


def _inputs(n: int, f: int, c: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    hidden = (0.5 * rng.standard_normal((n, f))).astype(np.float32)
    weight = (rng.standard_normal((c, f)) / np.sqrt(f)).astype(np.float32)
    labels = rng.integers(0, c, n).astype(np.int64)
    return hidden, weight, labels


def _step(framework: str, side: str, n: int, f: int, c: int, threads: int) -> Callable[[], Any]:
    """A function running one forward + backward, gradients w.r.t. hidden and weight."""
    hidden, weight, labels = _inputs(n, f, c)
    if framework == "torch":
        import torch
        import torch.nn.functional as F  # noqa: N812

        import polyloss
        import polyloss.torch as pt

        torch.set_num_threads(threads)
        h = torch.from_numpy(hidden).requires_grad_()
        w = torch.from_numpy(weight).requires_grad_()
        y = torch.from_numpy(labels)
        loss = {
            "unfused": lambda: F.cross_entropy(h @ w.T, y),
            "torch_chunked": lambda: F.linear_cross_entropy(
                h, w, y, options=torch.nn.LinearCrossEntropyOptions()),
            "polyloss": lambda: polyloss.linear_cross_entropy(h, w, y),
            "polyloss.torch": lambda: pt.linear_cross_entropy(h, w, y),
        }[side]

        def run() -> Any:
            h.grad = w.grad = None
            out = loss()
            out.backward()
            return float(out.detach())

        return run
    if framework == "jax":
        import jax
        import jax.numpy as jnp

        import polyloss

        h, w, y = jnp.asarray(hidden), jnp.asarray(weight), jnp.asarray(labels)
        if side == "unfused":
            import optax

            def loss(h: Any, w: Any, y: Any) -> Any:
                return optax.losses.softmax_cross_entropy_with_integer_labels(h @ w.T, y).mean()
        else:
            def loss(h: Any, w: Any, y: Any) -> Any:
                return polyloss.linear_cross_entropy(h, w, y)
        step = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
        compiled = step.lower(h, w, y).compile()

        def run() -> Any:
            value, grads = compiled(h, w, y)
            jax.block_until_ready(grads)
            return float(value)

        run.compiled = compiled  # type: ignore[attr-defined]
        return run
    if framework == "tensorflow":
        import tensorflow as tf

        import polyloss

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        h, w, y = tf.Variable(hidden), tf.Variable(weight), tf.constant(labels)

        def run() -> Any:
            with tf.GradientTape() as tape:
                if side == "unfused":
                    logits = tf.matmul(h, w, transpose_b=True)
                    out = tf.reduce_mean(
                        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
                else:
                    out = polyloss.linear_cross_entropy(h, w, y)
            grads = tape.gradient(out, [h, w])
            _ = [g.numpy() for g in grads]
            return float(out)

        return run
    raise ValueError(framework)


# ---- memory: one fresh process per side -------------------------------------------------------

def _warm_up(framework: str) -> None:
    """Load the framework's kernels and threads on a tiny problem, outside the measurement."""
    a = np.ones((8, 8), dtype=np.float32)
    if framework == "torch":
        import torch

        x = torch.from_numpy(a).requires_grad_()
        torch.nn.functional.cross_entropy(x @ x.T, torch.zeros(8, dtype=torch.int64)).backward()
    elif framework == "tensorflow":
        import tensorflow as tf

        x = tf.Variable(a)
        with tf.GradientTape() as tape:
            out = tf.reduce_sum(tf.exp(tf.matmul(x, x, transpose_b=True)))
        tape.gradient(out, x).numpy()


def _status(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _child_memory(framework: str, side: str, n: int, f: int, c: int, threads: int) -> dict:
    run = _step(framework, side, n, f, c, threads)  # inputs made, JAX's step compiled
    _warm_up(framework)
    before = _status("VmRSS")
    with open("/proc/self/clear_refs", "w") as fh:  # reset the peak (VmHWM) to the current RSS
        fh.write("5")
    # the first step: TensorFlow's and XLA's allocators keep what they once held, so a second
    # step would show no growth
    value = run()
    result = {"peak_rss_bytes": _status("VmHWM") - before, "value": value}
    if framework == "torch":
        result["allocator_peak_bytes"] = _torch_allocator_peak(run)
    if framework == "jax":
        stats = run.compiled.memory_analysis()  # type: ignore[attr-defined]
        result["xla_temp_bytes"] = int(stats.temp_size_in_bytes)
        result["xla_output_bytes"] = int(stats.output_size_in_bytes)
    return result


def _torch_allocator_peak(run: Callable[[], Any]) -> int:
    """The largest sum of live allocations during ``run()``, from torch.profiler's memory events
    (above what was live when it started)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        run()
    events = sorted((e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"),
                    key=lambda e: e.start_ns())
    live = peak = 0
    for e in events:
        live += e.nbytes()
        peak = max(peak, live)
    return peak


def memory(framework: str, n: int, f: int, c: int, threads: int, timeout: int) -> dict:
    out = {}
    for side in SIDES[framework]:
        cmd = [sys.executable, "-m", "polyloss.bench_linear", "--child-memory", framework, side,
               "--size", f"{n}x{f}x{c}", "--threads", str(threads)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        if proc.returncode:
            out[side] = {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed"}
        else:
            out[side] = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"  memory {framework:10s} {side:15s} {out[side]}", flush=True)
    return out


# ---- time: the sides of one framework interleaved in one process ------------------------------

def timing(framework: str, n: int, f: int, c: int, threads: int, repeats: int) -> dict:
    steps = {side: _step(framework, side, n, f, c, threads) for side in SIDES[framework]}
    values = {side: fn() for side, fn in steps.items()}  # warm-up round, and the values
    ref = values["unfused"]
    for side, v in values.items():  # the same loss, or the timing compares different things
        if not abs(v - ref) <= 1e-4 * abs(ref):
            raise AssertionError(f"{framework} {side}: loss {v} differs from the unfused {ref}")
    wall: dict[str, list[float]] = {s: [] for s in steps}
    cpu: dict[str, list[float]] = {s: [] for s in steps}
    order = list(steps)
    for r in range(repeats):
        for side in order[r % len(order):] + order[:r % len(order)]:
            w0, c0 = time.perf_counter(), time.process_time()
            steps[side]()
            wall[side].append(time.perf_counter() - w0)
            cpu[side].append(time.process_time() - c0)
    out = {}
    for side in steps:
        out[side] = {"wall_s": statistics.median(wall[side]), "cpu_s": statistics.median(cpu[side]),
                     "wall_samples": wall[side], "cpu_samples": cpu[side]}
    for side in steps:
        out[side]["wall_ratio"] = out[side]["wall_s"] / out["unfused"]["wall_s"]
        out[side]["cpu_ratio"] = out[side]["cpu_s"] / out["unfused"]["cpu_s"]
        print(f"  time   {framework:10s} {side:15s} wall {out[side]['wall_s']:.2f} s "
              f"(x{out[side]['wall_ratio']:.2f})  cpu {out[side]['cpu_s']:.2f} s "
              f"(x{out[side]['cpu_ratio']:.2f})", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="8192x1024x32768", help="NxFxC (rows x features x classes)")
    parser.add_argument("--frameworks", default="torch,jax,tensorflow")
    parser.add_argument("--what", default="memory,time")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per memory process")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--child-memory", nargs=2, metavar=("FRAMEWORK", "SIDE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    n, f, c = (int(v) for v in args.size.split("x"))
    if args.child_memory:
        print(json.dumps(_child_memory(*args.child_memory, n, f, c, args.threads)))
        return 0
    results: dict[str, Any] = {
        "size": {"rows": n, "features": f, "classes": c}, "dtype": "float32", "threads": args.threads,
        "machine": {"machine": platform.machine(), "python": platform.python_version(),
                    "cpus": os.cpu_count()},
        "logits_bytes": n * c * 4,
    }
    for framework in args.frameworks.split(","):
        entry = results.setdefault(framework, {})
        if "memory" in args.what:
            entry["memory"] = memory(framework, n, f, c, args.threads, args.timeout)
        if "time" in args.what:
            entry["time"] = timing(framework, n, f, c, args.threads, args.repeats)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

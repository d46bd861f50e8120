"""Real multi-process and multi-device runs give the single-device numbers.

Each engine's example (``examples/distributed_*.py``) runs in its own process, because each
needs its devices set up before its framework starts, and prints what it measured as JSON:

- torch DDP: 2 processes, gloo over loopback (a file rendezvous, so no port is contended),
  float64, an uneven split with different numbers of ignored labels per rank;
- ``tf.distribute.MirroredStrategy`` over 2 logical CPU devices: ``model.fit`` with polyloss's
  Keras losses, ``model.fit`` and a custom loop with a global normaliser;
- JAX over 2 host CPU devices (``--xla_force_host_platform_device_count=2``): ``jax.jit`` on
  sharded inputs and ``shard_map`` with ``psum``.

Parameters (and for JAX the value and gradient) must equal the one-device run's to 1e-12
relative (float64: measured differences are a few 1e-16); the naive per-replica mean, which
each example also runs, must not (it is off by percents), so the check can fail.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RTOL = 1e-12
NAIVE_AT_LEAST = 1e-3


def _run(script: str, timeout: int, *args: str) -> dict:
    env = dict(os.environ, PYTHONHASHSEED="0", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "examples", script), *args],
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _require(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed in this environment")


def test_torch_ddp_two_processes():
    _require("torch")
    import torch.distributed as dist

    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("this torch build has no gloo backend")
    report = _run("distributed_torch.py", 180, "--steps", "4")
    assert report["max_rel"] <= RTOL, report
    assert report["naive_max_rel"] >= NAIVE_AT_LEAST, report


def test_tf_mirrored_strategy_two_logical_cpus():
    _require("tensorflow")
    _require("keras")
    report = _run("distributed_tf.py", 300, "--steps", "2")
    for case in ("fit_keras_scce", "fit_keras_mse", "fit_global_ce_ignore_index",
                 "custom_loop_global_ce_ignore_index"):
        assert report[case]["max_rel"] <= RTOL, (case, report[case])
    assert report["fit_naive_ce_ignore_index"]["max_rel"] >= NAIVE_AT_LEAST, report


def test_jax_sharded_jit_and_shard_map_two_devices():
    _require("jax")
    report = _run("distributed_jax.py", 180, "--steps", "3")
    for mode in ("jit_sharded", "shard_map"):
        for what in ("value", "grad", "params"):
            assert report[mode][what]["max_rel"] <= RTOL, (mode, what, report[mode])
    assert report["naive_shard_map"]["params"]["max_rel"] >= NAIVE_AT_LEAST, report

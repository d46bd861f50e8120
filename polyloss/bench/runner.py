"""Runs the bench: one worker process per framework for the timings, and one fresh process per
(framework, side, mode) for peak memory; collects everything into one report dictionary.

The workers get fixed thread counts through the environment (set before their framework is
imported) and their CPU affinity; the machine, versions, date, load from other processes and
the wall time of each part are recorded.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from polyloss.bench.registry import SIDES, load_families
from polyloss.bench.worker import PROGRESS

__all__ = ["Config", "run", "MEMORY_CELL", "SCHEMA"]

SCHEMA = "polyloss-bench/1"
MEMORY_CELL = ("ce", "4096x1000")  # the target's cell: cross-entropy 4096 x 1000, fwd+bwd
PASSES = ("fwd", "fwd+bwd")
EXECS = ("eager", "compiled")


@dataclass
class Config:
    backends: list[str] = field(default_factory=list)  # empty: every installed one
    families: list[str] = field(default_factory=list)
    sizes: list[str] = field(default_factory=list)
    passes: tuple[str, ...] = PASSES
    execs: tuple[str, ...] = EXECS
    threads: int = 2
    repeats: int = 7
    min_time: float = 0.025  # seconds per repeat and step
    warmup: int = 2
    quick: bool = False
    check_only: bool = False  # build every cell and compare the sides' values; no timing, no memory
    memory: bool = True
    malloc_tuned: bool = False  # MALLOC_MMAP_THRESHOLD_/MALLOC_TRIM_THRESHOLD_ for the timing workers
    timeout: float = 1800.0  # per worker process

    @classmethod
    def quick_config(cls, **overrides: Any) -> Config:
        """A small, fast run: the first size of each family, eager, few short repeats, no memory."""
        base = {
            "execs": ("eager",),
            "repeats": 3,
            "min_time": 0.002,
            "warmup": 1,
            "quick": True,
            "memory": False,
        }
        base.update(overrides)
        return cls(**base)


def _env(cfg: Config, memory: bool) -> dict[str, str]:
    env = dict(os.environ)
    n = str(cfg.threads)
    env.update(
        {
            "OMP_NUM_THREADS": n,
            "MKL_NUM_THREADS": n,
            "OPENBLAS_NUM_THREADS": n,
            "TORCHINDUCTOR_COMPILE_THREADS": "1",
            "MXNET_CPU_WORKER_NTHREADS": "1",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "PYTHONHASHSEED": "0",
            "PYTHONWARNINGS": "ignore",
        }
    )
    for key in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"):
        env.pop(key, None)
    if memory:  # freed blocks go back to the OS, so RSS follows what is live
        env["MALLOC_MMAP_THRESHOLD_"] = "131072"
    elif cfg.malloc_tuned:
        env.update({"MALLOC_MMAP_THRESHOLD_": str(32 << 20), "MALLOC_TRIM_THRESHOLD_": str(1 << 30)})
    return env


def _cpu_busy() -> tuple[float, float]:
    """(busy CPU seconds of the whole machine, CPU seconds of our finished children)."""
    with open("/proc/stat") as f:
        fields = [float(v) for v in f.readline().split()[1:]]
    ticks = os.sysconf("SC_CLK_TCK")
    busy = (sum(fields) - fields[3] - (fields[4] if len(fields) > 4 else 0.0)) / ticks  # minus idle, iowait
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return busy, usage.ru_utime + usage.ru_stime


def _spawn(task: dict, cfg: Config, log: Callable[[str], None]) -> tuple[dict | None, dict]:
    """Run one worker; returns (its result or None, accounting: wall s, own and others' cores)."""
    with tempfile.TemporaryDirectory(prefix="polyloss-bench-") as tmp:
        config_path, out_path = os.path.join(tmp, "config.json"), os.path.join(tmp, "out.json")
        with open(config_path, "w") as f:
            json.dump(task, f)
        busy0, own0 = _cpu_busy()
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "polyloss.bench.worker", config_path, out_path],
            env=_env(cfg, task["task"] == "memory"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        tail: list[str] = []
        assert proc.stderr is not None
        try:
            deadline = start + cfg.timeout
            for line in proc.stderr:
                if line.startswith(PROGRESS):
                    log(line[len(PROGRESS) :].strip())
                else:
                    tail = (tail + [line.rstrip()])[-30:]
                if time.perf_counter() > deadline:
                    proc.kill()
                    tail.append(f"killed after {cfg.timeout:.0f} s")
                    break
            proc.wait(timeout=max(1.0, deadline - time.perf_counter()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            tail.append(f"killed after {cfg.timeout:.0f} s")
        wall = time.perf_counter() - start
        busy1, own1 = _cpu_busy()
        account = {
            "wall_s": round(wall, 2),
            "own_cores": round((own1 - own0) / wall, 2),
            "others_cores": round(max(0.0, (busy1 - busy0) - (own1 - own0)) / wall, 2),
        }
        if proc.returncode != 0 or not os.path.exists(out_path):
            account["error"] = (
                f"worker exited with {proc.returncode}: "
                + " | ".join(line for line in tail if line.strip())[-2000:]
            )
            return None, account
        with open(out_path) as f:
            return json.load(f), account


def _machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:  # pragma: no cover - not Linux
        pass
    mem_gib = None
    try:
        with open("/proc/meminfo") as f:
            mem_gib = round(int(f.readline().split()[1]) / 2**20, 1)
    except (OSError, ValueError, IndexError):  # pragma: no cover
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": mem_gib,
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def _source() -> dict[str, Any]:
    """Which polyloss was measured: its directory, git commit and uncommitted files (if a checkout)."""
    import polyloss

    root = os.path.dirname(os.path.dirname(os.path.abspath(polyloss.__file__)))
    out: dict[str, Any] = {"path": root, "commit": None, "modified": []}
    try:
        out["commit"] = (
            subprocess.run(
                ["git", "-C", root, "rev-parse", "--short", "HEAD"],
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            ).stdout.strip()
            or None
        )
        status = subprocess.run(
            ["git", "-C", root, "status", "--porcelain", "--", "polyloss"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
        out["modified"] = [line[3:] for line in status.splitlines() if line.strip()]
    except (OSError, subprocess.SubprocessError):
        pass
    return out


def _loadavg() -> str:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:  # pragma: no cover
        return "?"


def run(cfg: Config, log: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    """Run the bench as configured; returns the raw report (see :mod:`polyloss.bench.report`)."""
    from polyloss import __version__
    from polyloss.bench.drivers import installed_backends

    families = load_families()
    unknown = [f for f in cfg.families if f not in families]
    if unknown:
        raise ValueError(f"polyloss bench: unknown family {unknown}; expected some of {list(families)}")
    installed = installed_backends()
    backends = [b for b in installed if not cfg.backends or b in cfg.backends]
    started = time.perf_counter()
    report: dict[str, Any] = {
        "schema": SCHEMA,
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": _machine(),
        "versions": {"polyloss": __version__},
        "source": _source(),
        "config": {
            "backends": backends,
            "families": cfg.families or list(families),
            "sizes": cfg.sizes,
            "passes": list(cfg.passes),
            "execs": list(cfg.execs),
            "threads": cfg.threads,
            "repeats": cfg.repeats,
            "min_time_s": cfg.min_time,
            "warmup": cfg.warmup,
            "quick": cfg.quick,
            "check_only": cfg.check_only,
            "malloc": "MALLOC_MMAP_THRESHOLD_=32MiB MALLOC_TRIM_THRESHOLD_=1GiB"
            if cfg.malloc_tuned
            else "glibc defaults",
        },
        "threads": {},
        "compilers": {},
        "namespace": [],
        "rows": [],
        "checks": [],
        "skipped": [],
        "memory": [],
        "errors": [],
        "load": {"before": _loadavg()},
        "parts": [],
    }
    for backend in backends:
        task = {
            "task": "time",
            "backend": backend,
            "threads": cfg.threads,
            "families": cfg.families,
            "sizes": cfg.sizes,
            "passes": list(cfg.passes),
            "execs": list(cfg.execs),
            "repeats": cfg.repeats,
            "min_time": cfg.min_time,
            "warmup": cfg.warmup,
            "quick": cfg.quick,
            "check_only": cfg.check_only,
        }
        if cfg.check_only:
            task["execs"] = ["eager"]
        log(f"{backend}: timing")
        result, account = _spawn(task, cfg, log)
        report["parts"].append({"part": f"{backend} timing", **account})
        if result is None:
            report["errors"].append({"backend": backend, "part": "timing", "error": account["error"]})
            continue
        report["threads"][backend] = {**result["threads"], "pinned cores": result["pinned_cores"]}
        report["versions"].update(result["versions"])
        if result["compiler"]:
            report["compilers"][backend] = result["compiler"]
        for key in ("namespace", "rows", "checks", "skipped"):
            for item in result[key]:
                item.setdefault("backend", backend)
                report[key].append(item)
    if cfg.memory and not cfg.check_only:
        _memory(cfg, backends, families, report, log)
    report["load"]["after"] = _loadavg()
    report["seconds"] = round(time.perf_counter() - started, 1)
    return report


def _memory(
    cfg: Config, backends: list[str], families: dict, report: dict, log: Callable[[str], None]
) -> None:
    """Peak memory of the target's cell: exact in-process methods measure every side in one worker;
    peak RSS needs a fresh process per side and mode."""
    from polyloss.bench.drivers import get_driver

    name, size = MEMORY_CELL
    fam = families[name]
    if cfg.families and name not in cfg.families:
        return
    for backend in backends:
        declared = fam.backends.get(backend)
        if declared is None:
            continue
        driver = get_driver(backend)
        execs = [e for e in cfg.execs if e == "eager" or (driver.compiler and declared.compiled)]
        cells = [(e, side) for e in execs for side in SIDES if side in declared.labels]
        exact = [c for c in cells if c[0] in driver.exact_memory]
        groups = ([exact] if exact else []) + [[c] for c in cells if c[0] not in driver.exact_memory]
        for group in groups:
            what = ", ".join(f"{e} {side}" for e, side in group)
            task = {
                "task": "memory",
                "backend": backend,
                "threads": cfg.threads,
                "family": name,
                "size": size,
                "cells": group,
            }
            log(f"{backend}: peak memory, {name} {size}: {what}")
            result, account = _spawn(task, cfg, log)
            report["parts"].append({"part": f"{backend} memory ({what})", **account})
            if result is None:
                report["errors"].append(
                    {"backend": backend, "part": f"memory {what}", "error": account["error"]}
                )
                continue
            report["memory"].extend(result["memory"])
            report["skipped"].extend(result["skipped"])

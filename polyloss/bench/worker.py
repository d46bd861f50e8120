"""One framework's benchmarks, in a process of its own: ``python -m polyloss.bench.worker CONFIG OUT``.

CONFIG is a JSON file written by :mod:`polyloss.bench.runner`; OUT receives the results as
JSON. The CPU affinity is set before any framework is imported (the thread pools size
themselves from it). Progress goes to stderr, one line per cell, prefixed ``polyloss-bench:``.
"""

from __future__ import annotations

import json
import os
import sys
import time
import timeit
from typing import Any

import numpy as np

PROGRESS = "polyloss-bench:"
VALUE_RTOL = 1e-4  # float32 sums over up to 4M elements; a wrongly wired side is off by far more


def _progress(text: str) -> None:
    print(f"{PROGRESS} {text}", file=sys.stderr, flush=True)


def _pin(threads: int) -> list[int]:
    cores = sorted(os.sched_getaffinity(0))
    if threads < len(cores):
        cores = cores[:threads]
        os.sched_setaffinity(0, cores)
    return cores


def namespace_cost(driver: Any) -> list[dict[str, Any]]:
    """Seconds per call of ``backend_of`` on an already-seen array type (the cached path)."""
    from polyloss.backends import backend_of

    x = driver.array(np.zeros((8, 10), np.float32))
    y = driver.array(np.zeros((8, 10), np.float32))
    backend_of(x, y)
    out = []
    for label, stmt in (
        ("backend_of(x)", "backend_of(x)"),
        ("backend_of(x, y, None)", "backend_of(x, y, None)"),
    ):
        timer = timeit.Timer(stmt, globals={"backend_of": backend_of, "x": x, "y": y})
        number = 20000
        per_call = sorted(t / number for t in timer.repeat(7, number))
        out.append(
            {
                "backend": driver.name,
                "call": label,
                "median_s": per_call[len(per_call) // 2],
                "min_s": per_call[0],
            }
        )
    return out


def _selected_sizes(family: Any, cfg: dict) -> list[Any]:
    wanted = cfg.get("sizes") or []
    if wanted:
        return [s for s in family.sizes if any(s.matches(w) for w in wanted)]
    if cfg.get("quick"):
        return [family.sizes[0]]
    return list(family.sizes)


def _check_values(driver: Any, declared: Any, impls: dict) -> tuple[dict[str, float], str]:
    values: dict[str, float] = {}
    problems = []
    for side, impl in impls.items():
        try:
            values[side] = driver.value(impl)
        except Exception as exc:
            problems.append(f"{side} failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
    ref = values.get("native")
    for side in declared.same_value:
        if side in values and ref is not None:
            v = values[side]
            if not (np.isfinite(v) and abs(v - ref) <= VALUE_RTOL * max(abs(ref), 1e-3)):
                problems.append(f"{side} = {v!r} but native = {ref!r}")
    for side, v in values.items():
        if not np.isfinite(v):
            problems.append(f"{side} is not finite ({v!r})")
    return values, "; ".join(problems)


def _compiled_skip(driver: Any, declared: Any, size: Any, cfg: dict) -> str:
    """Why a cell has no compiled run ('' if it has one)."""
    if not driver.compiler:
        return f"{driver.name} has no compiler"
    if not declared.compiled:
        return declared.compiled_note
    if size.target_class == "small" and not cfg.get("sizes"):
        return "compiled mode runs at the large sizes unless --size names a small one"
    return ""


def run_time(cfg: dict) -> dict[str, Any]:
    from polyloss.bench.drivers import get_driver
    from polyloss.bench.registry import load_families
    from polyloss.bench.timing import interleaved

    driver = get_driver(cfg["backend"])
    threads = driver.setup(cfg["threads"])
    result: dict[str, Any] = {
        "backend": driver.name,
        "threads": threads,
        "versions": driver.versions(),
        "compiler": driver.compiler,
        "namespace": namespace_cost(driver),
        "rows": [],
        "checks": [],
        "skipped": [],
    }
    passes = [p for p in driver.passes if p in cfg["passes"]]
    families = load_families()
    for name, fam in families.items():
        if cfg.get("families") and name not in cfg["families"]:
            continue
        declared = fam.backends.get(driver.name)
        if declared is None:
            result["skipped"].append(
                {
                    "family": name,
                    "exec": "*",
                    "side": "*",
                    "reason": fam.missing.get(driver.name, "not registered"),
                }
            )
            continue
        for size in _selected_sizes(fam, cfg):
            for exec_ in cfg["execs"]:
                where = {"family": name, "size": size.name, "exec": exec_}
                why = _compiled_skip(driver, declared, size, cfg) if exec_ == "compiled" else ""
                if why:
                    result["skipped"].append({**where, "side": "*", "reason": why})
                    continue
                started = time.perf_counter()
                driver.begin_cell()
                impls = declared.builder(driver, fam.make_inputs(size))
                if set(impls) != set(declared.labels):
                    raise RuntimeError(
                        f"{name} on {driver.name}: built sides {sorted(impls)} but declared "
                        f"{sorted(declared.labels)}"
                    )
                if exec_ == cfg["execs"][0]:
                    values, problem = _check_values(driver, declared, impls)
                    result["checks"].append(
                        {
                            "family": name,
                            "size": size.name,
                            "values": values,
                            "same_value": list(declared.same_value),
                            "problem": problem,
                        }
                    )
                    if cfg.get("check_only"):
                        _progress(f"{driver.name} {name} {size.name} checked")
                        break
                steps = {}
                for side, impl in impls.items():
                    if exec_ == "compiled":
                        why = driver.can_compile(impl)
                        if why:
                            result["skipped"].append({**where, "side": side, "reason": why})
                            continue
                    for pass_ in passes:
                        steps[(side, pass_)] = driver.step(impl, pass_, exec_)
                stats = interleaved(
                    steps, repeats=cfg["repeats"], min_time=cfg["min_time"], warmup=cfg["warmup"]
                )
                for (side, pass_), st in stats.items():
                    result["rows"].append(
                        {
                            "backend": driver.name,
                            "family": name,
                            "size": size.name,
                            "batch": size.batch,
                            "target_class": size.target_class,
                            "exec": exec_,
                            "pass": pass_,
                            "side": side,
                            "impl": declared.labels[side],
                            "kind": declared.kind if side == "native" else "polyloss",
                            "median_s": st.median_s,
                            "min_s": st.min_s,
                            "compile_s": st.first_s if exec_ == "compiled" else None,
                            "calls": st.calls,
                            "repeats": st.repeats,
                            "error": st.error,
                        }
                    )
                _progress(f"{driver.name} {name} {size.name} {exec_} ({time.perf_counter() - started:.1f} s)")
    return result


def run_memory(cfg: dict) -> dict[str, Any]:
    """Peak memory of one family's fwd+bwd (NumPy: fwd) for each ``(exec, side)`` of ``cfg["cells"]``."""
    from polyloss.bench.drivers import get_driver
    from polyloss.bench.registry import load_families, rows

    driver = get_driver(cfg["backend"])
    driver.setup(cfg["threads"])
    fam = load_families()[cfg["family"]]
    declared = fam.backends[driver.name]
    size = next(s for s in fam.sizes if s.name == cfg["size"])
    pass_ = "fwd+bwd" if "fwd+bwd" in driver.passes else "fwd"
    inputs = fam.make_inputs(size)
    result: dict[str, Any] = {"backend": driver.name, "memory": [], "skipped": []}
    for exec_, side in cfg["cells"]:
        # fresh inputs and sides per cell: nothing one measurement allocates is live in the next
        impl = declared.builder(driver, inputs)[side]
        where = {"backend": driver.name, "family": fam.name, "size": size.name, "exec": exec_, "side": side}
        why = driver.can_compile(impl) if exec_ == "compiled" else ""
        if why:
            result["skipped"].append({**where, "reason": f"peak memory: {why}"})
            continue
        out = {
            **where,
            "impl": declared.labels[side],
            "pass": pass_,
            "input_bytes": int(sum(np.asarray(a).nbytes for a in inputs.values())),
        }
        if exec_ == "compiled" and driver.name == "jax":
            out.update(driver.xla_memory(impl))
        else:
            warm_impl = declared.builder(driver, fam.make_inputs(rows(8, size.dims[1])))[side]
            step = driver.step(impl, pass_, exec_)
            warm = driver.step(warm_impl, pass_, exec_)
            out.update(driver.peak_memory(step, warm, exec_))
            out.setdefault("method", driver.memory_method[exec_])
        result["memory"].append(out)
        _progress(f"{driver.name} peak memory {fam.name} {size.name} {exec_} {side}")
    return result


def main(argv: list[str]) -> int:
    config_path, out_path = argv
    with open(config_path) as f:
        cfg = json.load(f)
    cfg["pinned_cores"] = _pin(cfg["threads"])
    result = run_memory(cfg) if cfg["task"] == "memory" else run_time(cfg)
    result["pinned_cores"] = cfg["pinned_cores"]
    with open(out_path, "w") as f:
        json.dump(result, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

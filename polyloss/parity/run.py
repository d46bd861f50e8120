"""Run the parity matrix: every case x installed backend x dtype x device x input.

Canonical losses are compared with the oracle (the same loss on NumPy float64 arrays built
from the same cast inputs); mirrors with their framework's real native loss, run on that
framework's own arrays (on the CPU). Gradients (w.r.t. the prediction) are compared with the
native's gradient for mirrors, and with the float64 gradient of the first autograd backend
(torch where installed) on the same cast inputs for canonical losses (the test suite also
checks them against analytic formulas and finite differences).

The work is split into tasks (an oracle, a gradient reference, a native reference, one cell
per backend and device) grouped by the framework that runs them, so that each framework is
imported once per process and its per-process caches (JAX compiles each primitive once per
shape and dtype) serve every case. Groups run in this process (``jobs=1``) or in worker
processes started with ``spawn`` (``jobs>1``), largest first; the comparisons are made here,
from the values and gradients the tasks return.

Tolerance policy (``tolerance``, ``rounded_tolerance``, ``native_tolerance``), on relative
errors ``|a - e| / max(|e|, floor)``:

- float64: 1e-12;
- float32: 8 ulps times log2 of the reduction length (the prediction's size);
- float16/bfloat16, polyloss (computed in float32, rounded once to the input dtype):
  float32's tolerance plus half an ulp of the dtype (the final rounding);
- float16/bfloat16, mirror vs a native that computes in that dtype: polyloss's tolerance
  plus the native's own error, 2 ulps times log2 of the reduction length plus its final
  rounding;
- ``floor``: results whose terms are larger than the result (cancellation) compare
  absolutely to the terms' size (``Case.term_scale``); results below the smallest normal
  number compare absolutely (float32/bfloat16 may be flushed to zero by TensorFlow and XLA;
  float16 keeps subnormals, compared to one subnormal step); gradients relative to their
  largest element (or ``1/n``).

Where a native is less accurate than this, or cannot run a dtype, the documented
deliberate differences (``polyloss.parity.differences``) say so, with the measured size, and
that is the only place a comparison departs from the policy.
"""

from __future__ import annotations

import functools
import importlib
import math
import os
import queue
import re
import tempfile
import time
import types
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from polyloss.parity import differences as diffs
from polyloss.parity.backends import (
    BACKENDS,
    LOW_PRECISION,
    TestBackend,
    available_backends,
    dtype_name,
    get_backend,
    gpu_present,
    numpy_dtype,
)
from polyloss.parity.cases import ALL_CASES, Case, make_inputs

DTYPES = ("float32", "float64", "float16", "bfloat16")
DEVICES = ("cpu", "cuda")
POLYLOSS_MODULES = {
    "polyloss": "polyloss", "torch": "polyloss.torch", "keras": "polyloss.keras",
    "gluon": "polyloss.gluon", "optax": "polyloss.optax",
}
NATIVE_BACKEND = {"torch": "torch", "keras": "tensorflow", "gluon": "mxnet", "optax": "jax"}
NATIVE_MODULE = {"torch": "torch", "keras": "keras", "gluon": "mxnet", "optax": "optax"}

ULPS = 8.0  # float32: ulps per doubling of the reduction length
NATIVE_LOW_ULPS = 2.0  # a float16/bfloat16 native: ulps per doubling of the reduction length


# ---- results --------------------------------------------------------------------------------

@dataclass
class Result:
    """One cell: a case on one backend, device, dtype and input, against its reference."""

    case: Case
    backend: str
    dtype: str
    edge: str
    reference: str  # "oracle", "native", or "native@<dtype>" (the native run in another dtype)
    value_err: float  # max relative error of the value (0 when identical)
    grad_err: float | None  # max relative error of the gradient, None when not checked
    tol: float
    note: str = ""
    device: str = "cpu"
    out_dtype: str = ""  # the dtype the cell returned
    expected_dtype: str = ""  # the dtype it should have returned
    grad_tol: float | None = None  # the gradient's tolerance (None: ``tol``)

    @property
    def gradient_tol(self) -> float:
        return self.tol if self.grad_tol is None else self.grad_tol

    @property
    def dtype_ok(self) -> bool:
        return not self.expected_dtype or self.out_dtype == self.expected_dtype

    @property
    def ok(self) -> bool:
        return (self.value_err <= self.tol and (self.grad_err is None or self.grad_err <= self.gradient_tol)
                and self.dtype_ok)

    @property
    def worst(self) -> float:
        """The larger of the value and gradient errors as a fraction of their tolerances."""
        g = 0.0 if self.grad_err is None else _ratio(self.grad_err, self.gradient_tol)
        return max(_ratio(self.value_err, self.tol), g)


@dataclass(frozen=True)
class Skip:
    """Cells not run, and why (no GPU, a dtype a backend or native does not have)."""

    reason: str
    backend: str = ""
    device: str = ""
    dtype: str = ""
    convention: str = ""
    loss: str = ""
    cells: int = 0


@dataclass
class Matrix:
    """Everything one ``polyloss parity`` run found."""

    results: list[Result]
    skipped: list[Skip]
    backends: list[str]  # the backends that ran
    dtypes: list[str]
    devices: list[str]
    unavailable: dict[str, str]  # backend -> why it is not here (not installed)
    seconds: float = 0.0
    timings: dict[str, Any] = field(default_factory=dict)
    jobs: int = 1

    @property
    def failures(self) -> list[Result]:
        return [r for r in self.results if not r.ok]


def _ratio(err: float, tol: float) -> float:
    if err == 0:
        return 0.0
    return err / tol if tol else math.inf


# ---- tolerances -----------------------------------------------------------------------------

def _finfo(dtype: str) -> Any:
    if dtype == "bfloat16":
        import ml_dtypes

        return ml_dtypes.finfo(ml_dtypes.bfloat16)
    return np.finfo(dtype)


def _eps(dtype: str) -> float:
    return float(_finfo(dtype).eps)


def tolerance(dtype: str, n: int) -> float:
    """float64: 1e-12 relative; otherwise 8 ulps of ``dtype`` times log2 of the reduction
    length ``n`` (a computation carried out in ``dtype``)."""
    if dtype == "float64":
        return 1e-12
    return ULPS * _eps(dtype) * max(1.0, math.log2(max(n, 1)))


def rounded_tolerance(dtype: str, n: int) -> float:
    """float16/bfloat16 computed in float32 and rounded once to ``dtype`` (polyloss):
    float32's tolerance plus half an ulp of ``dtype``."""
    if dtype not in LOW_PRECISION:
        return tolerance(dtype, n)
    return tolerance("float32", n) + _eps(dtype) / 2


def native_tolerance(dtype: str, n: int) -> float:
    """The error of a native that computes in float16/bfloat16 itself: 2 ulps per doubling of
    the reduction length plus its final rounding."""
    return _eps(dtype) * (NATIVE_LOW_ULPS * max(1.0, math.log2(max(n, 1))) + 0.5)


def _floor(dtype: str, tol: float, term_scale: float) -> float:
    # below the smallest normal number errors count absolutely: float16 keeps subnormals (one
    # subnormal step), float32 and bfloat16 may be flushed to zero (the smallest normal)
    info = _finfo(dtype if dtype in DTYPES else "float64")
    tiny = float(info.smallest_subnormal if dtype == "float16" else info.smallest_normal)
    return max(term_scale, tiny / tol if tol else 0.0)


def relative_error(actual: Any, expected: Any, floor: float = 0.0) -> float:
    """Max ``|a - e| / max(|e|, floor)``; NaN matching NaN and equal infinities count as equal.

    ``floor`` is the magnitude below which errors count as absolute: the size of the terms
    a result was computed from (cancellation), or the largest gradient element.
    """
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    if a.shape != e.shape:
        return math.inf
    if a.size == 0:
        return 0.0
    same = (a == e) | (np.isnan(a) & np.isnan(e))
    if same.all():
        return 0.0
    with np.errstate(invalid="ignore", over="ignore"):
        denom = np.maximum(np.abs(e), max(floor, np.finfo(np.float64).tiny))
        err = np.where(same, 0.0, np.abs(a - e) / denom)
    err = np.where(np.isnan(err), math.inf, err)
    return float(err.max())


def grad_scale(grad: np.ndarray, n: int) -> float:
    # gradient vectors are compared relative to their largest element (or 1/n, a mean's
    # gradient scale, when all are 0): an element that is mathematically 0 may come out
    # as a rounding residue of its neighbours' size
    g = np.abs(np.asarray(grad, dtype=np.float64))
    g = g[np.isfinite(g)]
    return max(float(g.max()) if g.size else 0.0, 1.0 / max(n, 1))


# ---- what runs --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Job:
    """One case on one input in one dtype; every task of the job sees the same inputs."""

    key: int
    case_index: int
    edge: str
    dtype: str
    n: int  # the prediction's size (the reduction length of the tolerance)
    native_dtype: str = ""  # the dtype the native runs in ("" for canonical cases)
    native_note: str = ""  # why it is not ``dtype``


@dataclass(frozen=True)
class Task:
    job: int
    kind: str  # "oracle", "gradref", "native" or "cell"
    backend: str  # the backend that runs it
    device: str = "cpu"


@dataclass
class Outcome:
    """What a task returns: value and gradient as float64 copies, and the value's dtype."""

    value: np.ndarray | None = None
    grad: np.ndarray | None = None
    dtype: str = ""
    error: str = ""
    skip: str = ""
    seconds: float = 0.0
    cpu_seconds: float = 0.0


def _cases(cases: Sequence[Case] | None = None) -> Sequence[Case]:
    return ALL_CASES if cases is None else cases


def native_available(convention: str) -> str | None:
    """``None`` when the native of ``convention`` is installed here, else why not."""
    backend = get_backend(NATIVE_BACKEND[convention])
    reason = backend.unavailable_reason()
    if reason is not None:
        return reason
    module = NATIVE_MODULE[convention]
    if importlib.util.find_spec(module) is None:
        return f"{module} is not installed"
    return None


def _edges(case: Case) -> tuple[str, ...]:
    return ("random",) + tuple(case.edges)


def plan(
    backends: Iterable[str] | None = None,
    conventions: Iterable[str] | None = None,
    losses: Iterable[str] | None = None,
    dtypes: Iterable[str] | None = None,
    devices: Iterable[str] | None = None,
    cases: Sequence[Case] | None = None,
) -> tuple[list[Job], list[Task], list[Skip], list[TestBackend], dict[str, str]]:
    """The jobs and tasks of a run, the cells skipped (and why), the backends that run and
    the backends that cannot (name -> reason)."""
    all_cases = _cases(cases)
    conventions = set(conventions or ())
    losses = set(losses or ())
    dtypes = [d for d in DTYPES if d in set(dtypes or DTYPES)]
    devices = [d for d in DEVICES if d in set(devices or DEVICES)]
    names = list(backends) if backends else None
    targets = available_backends(names)
    unavailable = {b.name: b.unavailable_reason() for b in BACKENDS.values()
                   if (not names or b.name in names) and not b.available()}
    grad_ref = next((b for b in available_backends() if b.differentiable), None)
    skipped: list[Skip] = []

    # which devices each backend runs on here; CUDA needs a GPU (asked of each framework,
    # in the process that runs it, only when one is present)
    gpu_reason = gpu_present()
    target_devices: dict[str, list[str]] = {}
    for b in targets:
        target_devices[b.name] = []
        for device in devices:
            if device not in b.devices:
                continue
            if device != "cpu" and gpu_reason is not None:
                skipped.append(Skip(gpu_reason, backend=b.name, device=device))
                continue
            target_devices[b.name].append(device)

    jobs: list[Job] = []
    tasks: list[Task] = []
    native_missing: dict[str, str] = {}
    for index, case in enumerate(all_cases):
        if conventions and case.convention not in conventions:
            continue
        if losses and case.family not in losses:
            continue
        if case.convention != "polyloss":
            reason = native_missing.get(case.convention)
            if reason is None:
                reason = native_available(case.convention) or ""
                native_missing[case.convention] = reason
            if reason:
                skipped.append(Skip(f"native not available: {reason}", convention=case.convention,
                                    loss=case.label))
                continue
        for edge in _edges(case):
            for dtype in dtypes:
                if case.dtypes is not None and dtype not in case.dtypes:
                    skipped.append(Skip(case.dtypes_note, dtype=dtype, convention=case.convention,
                                        loss=f"{case.label} [{edge}]"))
                    continue
                native_dtype, native_note = "", ""
                if case.convention != "polyloss":
                    native_dtype, native_note = diffs.native_dtype_for(case, dtype, edge)
                n = make_inputs(case, None if edge == "random" else edge, dtype)[0].size
                job = Job(len(jobs), index, edge, dtype, n, native_dtype, native_note)
                job_tasks: list[Task] = []
                for b in targets:
                    if dtype not in b.parity_dtypes:
                        continue
                    for device in target_devices[b.name]:
                        job_tasks.append(Task(job.key, "cell", b.name, device))
                if not job_tasks:
                    continue
                jobs.append(job)
                if case.convention == "polyloss":
                    tasks.append(Task(job.key, "oracle", "numpy"))
                    if grad_ref is not None:
                        tasks.append(Task(job.key, "gradref", grad_ref.name))
                else:
                    tasks.append(Task(job.key, "native", NATIVE_BACKEND[case.convention]))
                tasks.extend(job_tasks)
    # the cells a device without a GPU would have run: as many as the backend's CPU cells
    cpu_cells: dict[str, int] = defaultdict(int)
    for t in tasks:
        if t.kind == "cell" and t.device == "cpu":
            cpu_cells[t.backend] += 1
    skipped = [Skip(s.reason, s.backend, s.device, s.dtype, s.convention, s.loss, cpu_cells[s.backend])
               if s.device not in ("", "cpu") else s for s in skipped]
    # backends without a dtype: one line each
    for b in targets:
        for dtype in dtypes:
            if dtype not in b.parity_dtypes:
                skipped.append(Skip(f"{b.name} has no {dtype}", backend=b.name, dtype=dtype))
    return jobs, tasks, skipped, targets, unavailable


# ---- running tasks ----------------------------------------------------------------------------

@functools.cache
def _native_namespace(convention: str) -> Any:
    if convention == "torch":
        import torch.nn
        import torch.nn.functional as F

        return types.SimpleNamespace(**vars(F), **{
            k: getattr(torch.nn, k) for k in dir(torch.nn) if k.endswith("Loss")
        })
    if convention == "keras":
        get_backend("tensorflow").setup()  # torch (if installed) before TensorFlow
        import keras

        return keras.losses
    if convention == "gluon":
        importlib.import_module("polyloss.backends.mxnet")  # the numpy.bool shim before mxnet
        return importlib.import_module("mxnet.gluon.loss")
    if convention == "optax":
        get_backend("jax").setup()  # 64-bit JAX
        import optax

        return optax.losses
    raise ValueError(convention)


def _float64(a: Any) -> np.ndarray:
    return np.asarray(a).astype(np.float64)


def _upcast(arrays: list, dtype: str) -> list:
    """The same values in ``dtype`` (integer labels and boolean masks unchanged)."""
    return [a if a is None or a.dtype.kind in "iub" else a.astype(numpy_dtype(dtype))
            for a in arrays]


def _wrap_slots(fn: Callable, arrays: list) -> tuple[Callable, list]:
    """``fn`` over the arrays that are not ``None`` (the ``None`` slots stay ``None``)."""
    present = [a for a in arrays if a is not None]
    slots = [a is not None for a in arrays]

    def wrapped(*xs: Any) -> Any:
        it = iter(xs)
        return fn(*[next(it) if s else None for s in slots])

    return wrapped, present


def _value_and_grad(backend: TestBackend, fn: Callable, arrays: list,
                    device: str = "cpu") -> tuple:
    wrapped, present = _wrap_slots(fn, arrays)
    if backend.differentiable:
        return backend.value_and_grad(wrapped, present, 0, device=device)
    return backend.to_numpy(wrapped(*[backend.asarray(a, device) for a in present])), None


def _native_value_and_grad(convention: str, call: Callable, arrays: list) -> tuple:
    """Run ``call(native_lib, pred, target, weight)`` on the native framework's own arrays."""
    lib = _native_namespace(convention)
    if convention == "gluon":
        import mxnet as mx
        from mxnet import autograd

        xs = [None if a is None else mx.nd.array(a, dtype=a.dtype) for a in arrays]
        xs[0].attach_grad()
        with autograd.record():
            out = call(lib, *xs)
        out.backward()
        return out.asnumpy(), xs[0].grad.asnumpy()
    if convention == "optax":
        return _optax_value_and_grad(call, arrays)
    backend = get_backend(NATIVE_BACKEND[convention])
    return _value_and_grad(backend, lambda *xs: call(lib, *xs), arrays)


@functools.cache
def _optax_jitted(call: Callable, slots: tuple[bool, ...]) -> Callable:
    # optax's losses are jax.numpy programs written for jax.jit, and run so: one compilation per
    # case, input shape and dtype (eager, every lax.scan and custom_jvp compiles anew per call)
    import jax
    import jax.numpy as jnp

    lib = _native_namespace("optax")

    def scalar(x: Any, *rest: Any) -> Any:
        it = iter((x,) + rest)
        out = call(lib, *[next(it) if s else None for s in slots])
        return jnp.sum(out), out

    return jax.jit(jax.value_and_grad(scalar, has_aux=True))


def _optax_value_and_grad(call: Callable, arrays: list) -> tuple:
    """An optax loss and its gradient w.r.t. the first array, under ``jax.jit``."""
    import jax.numpy as jnp

    slots = tuple(a is not None for a in arrays)
    xs = [jnp.asarray(a) for a in arrays if a is not None]
    (_, out), g = _optax_jitted(call, slots)(*xs)
    return np.asarray(out), np.asarray(g)


class Executor:
    """Runs tasks in this process; inputs are made once per job and process."""

    def __init__(self, jobs: Sequence[Job], cases: Sequence[Case] | None = None) -> None:
        self.cases = _cases(cases)
        self.jobs = {j.key: j for j in jobs}
        self._inputs: dict[int, list] = {}

    def inputs(self, job: Job) -> list:
        arrays = self._inputs.get(job.key)
        if arrays is None:
            if len(self._inputs) > 64:
                self._inputs.clear()
            case = self.cases[job.case_index]
            arrays = make_inputs(case, None if job.edge == "random" else job.edge, job.dtype)
            self._inputs[job.key] = arrays
        return arrays

    def run(self, task: Task) -> Outcome:
        job = self.jobs[task.job]
        case = self.cases[job.case_index]
        start, start_cpu = time.perf_counter(), time.process_time()
        try:
            outcome = self._run(task, job, case)
        except Exception as exc:  # reported as a failed cell, never hidden
            outcome = Outcome(error=_describe(exc))
        outcome.seconds = time.perf_counter() - start
        outcome.cpu_seconds = time.process_time() - start_cpu
        return outcome

    def _run(self, task: Task, job: Job, case: Case) -> Outcome:
        arrays = self.inputs(job)
        if task.kind == "oracle":
            module = importlib.import_module("polyloss")
            value = np.asarray(case.call(module, *_upcast(arrays, "float64")))
            return Outcome(_float64(value), None, dtype_name(value))
        if task.kind == "gradref":
            module = importlib.import_module("polyloss")
            backend = get_backend(task.backend)
            _, grad = _value_and_grad(backend, lambda *xs: case.call(module, *xs),
                                      _upcast(arrays, "float64"))
            return Outcome(None, None if grad is None else _float64(grad), "float64")
        if task.kind == "native":
            native_arrays = arrays if job.native_dtype == job.dtype else _upcast(arrays, job.native_dtype)
            value, grad = _native_value_and_grad(case.convention, case.call, native_arrays)
            return Outcome(_float64(value), None if grad is None else _float64(grad), dtype_name(value))
        backend = get_backend(task.backend)
        if task.device != "cpu":
            reason = backend.device_status(task.device)
            if reason is not None:
                return Outcome(skip=reason)
        module = importlib.import_module(POLYLOSS_MODULES[case.convention])
        value, grad = _value_and_grad(backend, lambda *xs: case.call(module, *xs), arrays,
                                      task.device)
        return Outcome(_float64(value), None if grad is None else _float64(grad), dtype_name(value))


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[-1] if text else ''}"[:300]


# ---- groups and workers -----------------------------------------------------------------------

# rough CPU seconds per task, to start the largest groups first (measured on the 2-core machine;
# JAX cells that reuse float32 compilations are cheap, float64 ones compile their own)
_TASK_COST = {("jax", "float32"): 0.07, ("jax", "float64"): 0.18, ("jax", "native"): 0.19,
              "jax": 0.1, "tensorflow": 0.013, "mxnet": 0.005, "torch": 0.002, "dask": 0.01,
              "numpy": 0.0005, "array_api_strict": 0.002, "cupy": 0.01}
_IMPORT_COST = {"tensorflow": 5.0, "jax": 1.5, "torch": 1.5, "mxnet": 1.0}
_SINGLE = {"float32": 0, "float16": 1, "bfloat16": 2}


_KERAS_OBJECT = re.compile(r"^[A-Z]\w*\(")


def _computes_in(case: Case, dtype: str) -> str:
    """The precision a cell of ``case`` computes in: float16/bfloat16 in float32, Keras loss
    objects in their dtype (float32 unless given), Keras's CTC in float32."""
    if case.convention == "keras":
        if "dtype='float64'" in case.label:
            return "float64"
        if _KERAS_OBJECT.match(case.label) or "keras-ctc-float32" in case.differences:
            return "float32"
    return "float32" if dtype in LOW_PRECISION else dtype


def _group_key(task: Task, job: Job, cases: Sequence[Case]) -> tuple[str, str]:
    # JAX compiles every primitive once per shape, dtype and process: cells that compute in
    # float32 (float16/bfloat16 inputs, Keras loss objects) share the float32 process, those
    # that compute in float64 the float64 one
    if task.backend != "jax":
        return task.backend, "all"
    if task.kind == "native":  # jitted: one compilation per case, shape and dtype anyway
        return task.backend, "native"
    return task.backend, _computes_in(cases[job.case_index], job.dtype)


def group_tasks(jobs: Sequence[Job], tasks: Sequence[Task],
                cases: Sequence[Case] | None = None) -> list[list[Task]]:
    """Tasks grouped by the framework that runs them, largest (estimated) group first; within
    a group float32 comes before float16/bfloat16 (which reuse its compilations)."""
    by_key = {j.key: j for j in jobs}
    all_cases = _cases(cases)
    groups: dict[tuple[str, str], list[Task]] = defaultdict(list)
    for t in tasks:
        groups[_group_key(t, by_key[t.job], all_cases)].append(t)
    for g in groups.values():
        g.sort(key=lambda t: (_SINGLE.get(by_key[t.job].dtype, 0), t.job))

    def cost(item: tuple[tuple[str, str], list[Task]]) -> float:
        key, ts = item
        per_task = _TASK_COST.get(key, _TASK_COST.get(key[0], 0.01))
        return _IMPORT_COST.get(key[0], 0.0) + per_task * len(ts)

    return [ts for _, ts in sorted(groups.items(), key=cost, reverse=True)]


def _count(stats: dict, task: Task, outcome: Outcome) -> None:
    key = f"{task.backend} {task.kind}"
    stats["cpu"][key] = stats["cpu"].get(key, 0.0) + outcome.cpu_seconds
    stats["wall"][key] = stats["wall"].get(key, 0.0) + outcome.seconds


def _in_process(executor: Executor, groups: list[list[Task]], outcomes: dict,
                progress: Callable[[int, int], None] | None, total: int, stats: dict) -> None:
    done = 0
    _import_torch_first()
    for group in groups:
        for task in group:
            outcomes[task] = executor.run(task)
            _count(stats, task, outcomes[task])
            done += 1
            if progress:
                progress(done, total)


def _import_torch_first() -> None:
    # torch's shared libraries must be loaded before TensorFlow's, which a convention module
    # (polyloss.keras imports Keras) may import before any backend's set-up runs
    if importlib.util.find_spec("torch") is not None and importlib.util.find_spec("tensorflow") is not None:
        try:
            get_backend("torch").setup()
        except Exception:  # a broken torch is reported by its own cells
            pass


def _worker(worker: int, jobs: list[Job], group_queue: Any, result_queue: Any, log_path: str) -> None:
    """A worker process: runs whole groups, sends back each task's outcome."""
    # the frameworks' own start-up messages go to a log file, not the terminal
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(fd, 2)
    _import_torch_first()
    executor = Executor(jobs)
    start_cpu = time.process_time()
    while True:
        group = group_queue.get()
        if group is None:
            break
        batch = []
        for task in group:
            batch.append((task, executor.run(task)))
            if len(batch) >= 8:
                result_queue.put(("outcomes", worker, batch))
                batch = []
        if batch:
            result_queue.put(("outcomes", worker, batch))
    result_queue.put(("done", worker, time.process_time() - start_cpu))


def _in_workers(jobs: list[Job], groups: list[list[Task]], n_workers: int, outcomes: dict,
                progress: Callable[[int, int], None] | None, total: int, stats: dict) -> None:
    import multiprocessing as mp

    ctx = mp.get_context("spawn")  # no fork of a process that may hold framework threads
    group_queue, result_queue = ctx.Queue(), ctx.Queue()
    for g in groups:
        group_queue.put(g)
    for _ in range(n_workers):
        group_queue.put(None)
    logs = [tempfile.NamedTemporaryFile(prefix=f"polyloss-parity-{i}-", suffix=".log", delete=False).name
            for i in range(n_workers)]
    procs = [ctx.Process(target=_worker, args=(i, jobs, group_queue, result_queue, logs[i]), daemon=True)
             for i in range(n_workers)]
    for p in procs:
        p.start()
    done, finished = 0, set()
    try:
        while len(finished) < n_workers:
            try:
                kind, worker, payload = result_queue.get(timeout=1.0)
            except queue.Empty:
                for i, p in enumerate(procs):
                    if i not in finished and not p.is_alive():
                        finished.add(i)
                        stats["crashed"].append(f"worker {i} exited with status {p.exitcode}: "
                                                + _tail(logs[i]))
                continue
            if kind == "done":
                finished.add(worker)
                stats["worker_cpu"].append(payload)
                continue
            for task, outcome in payload:
                outcomes[task] = outcome
                _count(stats, task, outcome)
                done += 1
            if progress:
                progress(done, total)
    finally:
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()
        for path in logs:
            try:
                os.unlink(path)
            except OSError:
                pass


def _tail(path: str, lines: int = 5) -> str:
    try:
        with open(path, errors="replace") as f:
            return " | ".join(f.read().strip().splitlines()[-lines:])
    except OSError:
        return ""


def default_jobs(tasks: Sequence[Task]) -> int:
    """Worker processes for a run: one (this process) for small runs, else one per core, at
    most four (each worker holds every framework: about 2 GB)."""
    estimate = sum(_TASK_COST.get(t.backend, 0.01) for t in tasks)
    if estimate < 20.0:
        return 1
    return max(1, min(os.cpu_count() or 1, 4))


# ---- comparing ----------------------------------------------------------------------------------

def _less_precise(a: str, b: str) -> str:
    return min(a, b, key=DTYPES_BY_PRECISION.index)


def _error_of(dtype: str, n: int, computes_in: str = "") -> float:
    """The tolerance share of one side of a comparison whose result has ``dtype`` and was
    computed in ``computes_in`` (default: ``dtype``)."""
    computes_in = computes_in or dtype
    if dtype in LOW_PRECISION and computes_in not in LOW_PRECISION:
        return rounded_tolerance(dtype, n)  # computed in float32 (or more), rounded once
    if computes_in in LOW_PRECISION:
        return native_tolerance(computes_in, n)
    return tolerance(computes_in, n)


def _mirror_tolerance(job: Job, rules: diffs.Rules, ref_dtype: str) -> tuple[float, str]:
    """The tolerance of a mirror's cells against its native, and the dtype they must return."""
    dtype, n = job.dtype, job.n
    if job.native_dtype != dtype:
        # the native cannot run this dtype: compared with it run in ``native_dtype``
        native = job.native_dtype
        if DTYPES_BY_PRECISION.index(native) < DTYPES_BY_PRECISION.index(dtype):
            tol = tolerance(native, n)  # the native is the less precise side
        else:
            tol = _error_of(dtype, n, "float32" if dtype in LOW_PRECISION else dtype)
        return max(tol, rules.native_tol.get(native, 0.0)), dtype
    expected = ref_dtype if ref_dtype in DTYPES else dtype
    native_precision = rules.native_computes_in or expected
    if rules.native_promotes:
        # the native returns more precision than it was given (but computed in part in the
        # input's): the mirror keeps the input dtype
        expected = dtype
        native_precision = rules.native_computes_in or dtype
    if expected in LOW_PRECISION:
        # polyloss rounds once from float32; the native's own error comes on top
        tol = rounded_tolerance(expected, n) + _error_of(native_precision, n)
        if native_precision not in LOW_PRECISION:
            tol = rounded_tolerance(expected, n) + tolerance(_less_precise(native_precision, "float32"), n)
    else:
        tol = tolerance(_less_precise(expected, native_precision), n)
    return max(tol, rules.native_tol.get(native_precision, 0.0)), expected


def _in_range(reference: np.ndarray, dtype: str) -> np.ndarray:
    """A reference computed in more precision than ``dtype``, with the values beyond ``dtype``'s
    range as the infinities that rounding to ``dtype`` gives (float16 overflows at 65520)."""
    if dtype not in LOW_PRECISION or reference.size == 0:
        return reference
    with np.errstate(over="ignore"):
        rounded = reference.astype(numpy_dtype(dtype)).astype(np.float64)
    overflow = np.isinf(rounded) & np.isfinite(reference)
    return np.where(overflow, rounded, reference) if overflow.any() else reference


def _compare_job(job: Job, case: Case, tasks: list[Task], outcomes: dict[Task, Outcome]) -> list[Result]:
    missing = Outcome(error="not run (its worker process ended)")
    refs = {t.kind: outcomes.get(t, missing) for t in tasks if t.kind != "cell"}
    cells = [t for t in tasks if t.kind == "cell"]
    dtype, n = job.dtype, job.n
    if case.convention == "polyloss":
        ref = refs["oracle"]
        reference = "oracle"
        if ref.error:
            return [_failed(case, job, reference, f"oracle failed: {ref.error}")]
        if "gradref" in refs and refs["gradref"].error:
            return [_failed(case, job, reference, f"gradient reference failed: {refs['gradref'].error}")]
        ref_grad = refs["gradref"].grad if "gradref" in refs else None
        expected_dtype = dtype
        tol = rounded_tolerance(dtype, n)
        floor_dtype = dtype
    else:
        ref = refs["native"]
        reference = "native" if job.native_dtype == dtype else f"native@{job.native_dtype}"
        if ref.error:
            return [_failed(case, job, reference, f"native failed: {ref.error}")]
        ref_grad = ref.grad
        tol, expected_dtype = _mirror_tolerance(job, diffs.rules_for(case, dtype, job.edge), ref.dtype)
        # subnormal results: in the less precise of the cell's and the reference's dtype
        floor_dtype = _less_precise(expected_dtype, job.native_dtype) if job.native_dtype in DTYPES \
            else expected_dtype
    floor = _floor(floor_dtype, tol, case.term_scale)
    # a gradient has the input's dtype: where the value does not (a native returning float32
    # for float16 inputs), rounding each side's gradient to the input dtype adds an ulp
    grad_tol = tol + (_eps(dtype) if dtype in LOW_PRECISION and expected_dtype != dtype else 0.0)
    out: list[Result] = []
    for t in cells:
        o = outcomes.get(t)
        if o is None:
            out.append(_failed(case, job, reference, "not run (its worker process ended)", t))
            continue
        if o.skip:
            continue
        if o.error:
            out.append(_failed(case, job, reference, o.error, t, tol))
            continue
        expected = _in_range(ref.value, expected_dtype)
        if (case.convention == "gluon" and o.value.ndim == 0 and expected.shape == (1,)):
            # classic mx.nd has no 0-d arrays: a Gluon scalar (PoissonNLLLoss) is shape (1,)
            expected = expected.reshape(())
        value_err = relative_error(o.value, expected, floor)
        grad_err = None
        if o.grad is not None and ref_grad is not None:
            grad_floor = max(floor, grad_scale(ref_grad, n))
            grad_err = relative_error(o.grad, _in_range(ref_grad, dtype), grad_floor)
        note = "" if o.dtype == expected_dtype else f"returned {o.dtype}, expected {expected_dtype}"
        out.append(Result(case, t.backend, dtype, job.edge, reference, value_err, grad_err, tol,
                          note, t.device, o.dtype, expected_dtype, grad_tol))
    return out


DTYPES_BY_PRECISION = ("bfloat16", "float16", "float32", "float64")


def _failed(case: Case, job: Job, reference: str, note: str, task: Task | None = None,
            tol: float = 0.0) -> Result:
    return Result(case, task.backend if task else "reference", job.dtype, job.edge, reference,
                  math.inf, None, tol, note, task.device if task else "cpu")


# ---- the whole matrix ---------------------------------------------------------------------------

def run_matrix(
    backends: Iterable[str] | None = None,
    conventions: Iterable[str] | None = None,
    losses: Iterable[str] | None = None,
    dtypes: Iterable[str] | None = None,
    devices: Iterable[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
    jobs: int | None = None,
) -> Matrix:
    """Run the matrix (``jobs`` worker processes; ``None``: :func:`default_jobs`, ``1``: this
    process) and compare every cell with its reference."""
    start = time.perf_counter()
    cases = ALL_CASES
    job_list, tasks, skipped, targets, unavailable = plan(backends, conventions, losses, dtypes,
                                                          devices, cases)
    plan_s = time.perf_counter() - start
    executor = Executor(job_list, cases)
    n_workers = default_jobs(tasks) if jobs is None else max(1, jobs)
    groups = group_tasks(job_list, tasks, cases)
    n_workers = min(n_workers, max(1, len(groups)))
    outcomes: dict[Task, Outcome] = {}
    stats: dict[str, Any] = {"crashed": [], "worker_cpu": [], "cpu": {}, "wall": {}}
    run_start = time.perf_counter()
    if progress:
        progress(0, len(tasks))
    if n_workers == 1:
        _in_process(executor, groups, outcomes, progress, len(tasks), stats)
    else:
        _in_workers(job_list, groups, n_workers, outcomes, progress, len(tasks), stats)
    run_s = time.perf_counter() - run_start

    compare_start = time.perf_counter()
    by_job: dict[int, list[Task]] = defaultdict(list)
    for t in tasks:
        by_job[t.job].append(t)
    results: list[Result] = []
    for job in job_list:
        results.extend(_compare_job(job, cases[job.case_index], by_job[job.key], outcomes))
    # cells a framework could not run on a device (no GPU support in this build)
    device_skips: dict[tuple[str, str], tuple[str, int]] = {}
    for t, o in outcomes.items():
        if o.skip:
            reason, count = device_skips.get((t.backend, t.device), (o.skip, 0))
            device_skips[(t.backend, t.device)] = (reason, count + 1)
    for (backend, device), (reason, count) in device_skips.items():
        skipped.append(Skip(reason, backend=backend, device=device, cells=count))
    for crash in stats["crashed"]:
        skipped.append(Skip(crash))
    compare_s = time.perf_counter() - compare_start
    ran = sorted({r.backend for r in results if r.backend != "reference"},
                 key=list(BACKENDS).index)
    timings = {"plan_s": round(plan_s, 2), "run_s": round(run_s, 2), "compare_s": round(compare_s, 2),
               "task_cpu_s": {k: round(v, 2) for k, v in sorted(stats["cpu"].items())},
               "task_wall_s": {k: round(v, 2) for k, v in sorted(stats["wall"].items())},
               "worker_cpu_s": [round(c, 2) for c in stats["worker_cpu"]],
               "tasks": len(tasks), "groups": len(groups)}
    return Matrix(results, skipped, [b.name for b in targets if b.name in ran or not results],
                  [d for d in DTYPES if d in set(dtypes or DTYPES)],
                  [d for d in DEVICES if d in set(devices or DEVICES)], unavailable,
                  time.perf_counter() - start, timings, n_workers)


def run(
    backends: Iterable[str] | None = None,
    conventions: Iterable[str] | None = None,
    losses: Iterable[str] | None = None,
    dtypes: Iterable[str] = DTYPES,
    progress: Callable[[int, int], None] | None = None,
    devices: Iterable[str] | None = None,
    jobs: int | None = 1,
) -> list[Result]:
    """Run the matrix and return one ``Result`` per (case, backend, device, dtype, edge)."""
    return run_matrix(backends, conventions, losses, dtypes, devices, progress, jobs).results

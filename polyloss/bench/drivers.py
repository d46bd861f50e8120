"""How each framework is driven: threads, arrays, one forward or forward+backward step, its
compiled form, and peak memory.

A driver runs inside a worker process that serves only its framework (two threaded frameworks
in one process compete for the cores). Steps are zero-argument callables that finish their
work before returning (JAX ``block_until_ready``, MXNet ``wait_to_read``); for compiled modes
the first call compiles.

"fwd": the loss on inputs that track no gradient. "fwd+bwd": the loss and its gradient with
respect to the first input (``torch.autograd.grad``, ``tf.GradientTape``,
``jax.value_and_grad``, MXNet ``autograd.record`` + ``backward``).
"""

from __future__ import annotations

import importlib.util
import os
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np

from polyloss.bench.registry import Impl

__all__ = ["Driver", "get_driver", "installed_backends", "rss_peak"]

Step = Callable[[], Any]


def installed_backends() -> list[str]:
    """The bench's backends importable here (MXNet 1.9.1 needs NumPy < 2)."""
    from polyloss.bench.registry import BACKENDS

    found = []
    for name in BACKENDS:
        module = {"tensorflow": "tensorflow", "jax": "optax"}.get(name, name)
        if importlib.util.find_spec(module) is None:
            continue
        if name == "mxnet" and int(np.__version__.split(".")[0]) >= 2:
            continue
        found.append(name)
    return found


class Driver:
    name = ""
    passes: tuple[str, ...] = ("fwd", "fwd+bwd")
    compiler = ""  # what "compiled" means here; "" = no compiled mode
    memory_method = {"eager": "peak RSS above the RSS before the first full-size call (fresh process)"}
    exact_memory: tuple[str, ...] = ()  # modes whose memory method is exact in a shared process

    def setup(self, threads: int) -> dict[str, Any]:
        """Fix the thread counts; return what was set, for the report."""
        return {}

    def versions(self) -> dict[str, str]:
        return {"numpy": np.__version__}

    def array(self, a: np.ndarray) -> Any:
        raise NotImplementedError

    def begin_cell(self) -> None:
        """Called before a cell's sides are built (torch clears its compile caches)."""

    def step(self, impl: Impl, pass_: str, exec_: str) -> Step:
        raise NotImplementedError

    def value(self, impl: Impl) -> float:
        """The forward value, as a float (the mean of a per-sample result)."""
        out = impl.fn(*impl.args)
        return float(np.mean(np.asarray(self.to_numpy(out), dtype=np.float64)))

    def to_numpy(self, x: Any) -> np.ndarray:
        return np.asarray(x)

    def can_compile(self, impl: Impl) -> str:
        """'' if ``impl`` has a compiled mode here, else why not."""
        if not self.compiler:
            return f"{self.name} has no compiler"
        if not impl.compiled:
            return impl.note or "not compiled"
        return ""

    def peak_memory(self, step: Step, warm: Step, exec_: str) -> dict[str, Any]:
        """Peak memory of ``step`` (one full-size fwd+bwd); ``warm`` is the same step on a small
        input, run first so that lazy library set-up is not counted."""
        return rss_peak(step, warm)


# ---- NumPy -----------------------------------------------------------------------------------


class NumpyDriver(Driver):
    name = "numpy"
    passes = ("fwd",)
    memory_method = {"eager": "tracemalloc peak during the call (NumPy has no backward: forward only)"}
    exact_memory = ("eager",)

    def setup(self, threads: int) -> dict[str, Any]:
        return {
            "BLAS/OpenMP": f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '?')} (losses use no BLAS)"
        }

    def array(self, a: np.ndarray) -> Any:
        return np.array(a, copy=True)

    def step(self, impl: Impl, pass_: str, exec_: str) -> Step:
        fn, args = impl.fn, impl.args
        return lambda: fn(*args)

    def peak_memory(self, step: Step, warm: Step, exec_: str) -> dict[str, Any]:
        warm()
        tracemalloc.start()
        try:
            step()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        return {"peak_bytes": peak, "method": self.memory_method["eager"]}


# ---- torch -----------------------------------------------------------------------------------


class TorchDriver(Driver):
    name = "torch"
    compiler = "torch.compile (inductor)"
    memory_method = {
        "eager": "torch.profiler memory events: the allocator's peak above the inputs",
        "compiled": "torch.profiler memory events: the allocator's peak above the inputs",
    }
    exact_memory = ("eager", "compiled")

    def setup(self, threads: int) -> dict[str, Any]:
        import torch
        import torch._dynamo

        torch.set_num_threads(threads)
        try:
            torch.set_num_interop_threads(threads)
        except RuntimeError:  # pragma: no cover - already set by an earlier parallel call
            pass
        # one cell compiles up to 6 functions; each cell starts from a reset
        torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)
        return {
            "torch.set_num_threads": torch.get_num_threads(),
            "torch.set_num_interop_threads": torch.get_num_interop_threads(),
            "TORCHINDUCTOR_COMPILE_THREADS": os.environ.get("TORCHINDUCTOR_COMPILE_THREADS", "default"),
        }

    def versions(self) -> dict[str, str]:
        import torch

        return {**super().versions(), "torch": torch.__version__}

    def array(self, a: np.ndarray) -> Any:
        import torch

        return torch.from_numpy(np.array(a, copy=True, order="C"))

    def to_numpy(self, x: Any) -> np.ndarray:
        return x.detach().numpy()

    def begin_cell(self) -> None:
        import torch._dynamo

        torch._dynamo.reset()

    def step(self, impl: Impl, pass_: str, exec_: str) -> Step:
        import torch

        fn = torch.compile(impl.fn) if exec_ == "compiled" else impl.fn
        x, rest = impl.args[0], impl.args[1:]
        if pass_ == "fwd":
            return lambda: fn(x, *rest)
        leaf = x.detach().clone().requires_grad_(True)

        def run() -> Any:
            loss = fn(leaf, *rest)
            return torch.autograd.grad(loss.sum() if loss.ndim else loss, leaf)

        return run

    def peak_memory(self, step: Step, warm: Step, exec_: str) -> dict[str, Any]:
        from torch.profiler import ProfilerActivity, profile

        warm()
        step()  # compiles a compiled step: compilation is not part of the peak
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            step()
        # every allocation (+bytes) and free (-bytes) of the CPU allocator, in time order
        events = [
            (e.start_ns(), e.nbytes())
            for e in prof.profiler.kineto_results.events()
            if e.name() == "[memory]"
        ]
        current = peak = 0
        for _, delta in sorted(events):
            current += delta
            peak = max(peak, current)
        return {"peak_bytes": peak, "method": self.memory_method[exec_]}


# ---- TensorFlow ------------------------------------------------------------------------------


class TensorflowDriver(Driver):
    name = "tensorflow"
    compiler = "tf.function(jit_compile=True)"
    memory_method = {
        "eager": "peak RSS above the RSS before the first full-size call (fresh process)",
        "compiled": "peak RSS above the RSS before the first full-size call (fresh process; "
        "XLA compilation done in an earlier call)",
    }

    def setup(self, threads: int) -> dict[str, Any]:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
        try:
            tf.get_logger().setLevel("ERROR")
        except Exception:  # pragma: no cover
            pass
        return {
            "tf intra_op_parallelism_threads": tf.config.threading.get_intra_op_parallelism_threads(),
            "tf inter_op_parallelism_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        }

    def versions(self) -> dict[str, str]:
        import keras
        import tensorflow as tf

        return {**super().versions(), "tensorflow": tf.__version__, "keras": keras.__version__}

    def array(self, a: np.ndarray) -> Any:
        import tensorflow as tf

        return tf.constant(a)

    def to_numpy(self, x: Any) -> np.ndarray:
        return np.asarray(x.numpy())

    def step(self, impl: Impl, pass_: str, exec_: str) -> Step:
        import tensorflow as tf

        fn = impl.fn
        if pass_ == "fwd":
            body = fn
        else:

            def body(x: Any, *rest: Any) -> Any:
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    loss = fn(x, *rest)
                return loss, tape.gradient(loss, x)

        if exec_ == "compiled":
            body = tf.function(body, jit_compile=True)
        args = impl.args
        return lambda: body(*args)


# ---- MXNet -----------------------------------------------------------------------------------


class MxnetDriver(Driver):
    name = "mxnet"
    compiler = "Gluon hybridize(static_alloc=True, static_shape=True) (the loss blocks)"
    memory_method = {
        "eager": "peak RSS above the RSS before the first full-size call (fresh process)",
        "compiled": "peak RSS above the RSS before the first full-size call (fresh process)",
    }

    def setup(self, threads: int) -> dict[str, Any]:
        import polyloss.backends.mxnet  # noqa: F401 - the numpy.bool shim, then mxnet

        return {
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "?"),
            "MXNET_CPU_WORKER_NTHREADS": os.environ.get("MXNET_CPU_WORKER_NTHREADS", "default (1)"),
        }

    def versions(self) -> dict[str, str]:
        import mxnet as mx

        return {**super().versions(), "mxnet": mx.__version__}

    def array(self, a: np.ndarray) -> Any:
        import mxnet as mx

        return mx.nd.array(a, dtype=a.dtype)

    def to_numpy(self, x: Any) -> np.ndarray:
        return x.asnumpy()

    def can_compile(self, impl: Impl) -> str:
        if impl.block is None:
            return "not a Gluon block: hybridize applies to blocks only"
        return super().can_compile(impl)

    def step(self, impl: Impl, pass_: str, exec_: str) -> Step:
        from mxnet import autograd

        if exec_ == "compiled":
            impl.block.hybridize(static_alloc=True, static_shape=True)
        fn, x, rest = impl.fn, impl.args[0], impl.args[1:]
        if pass_ == "fwd":

            def forward() -> Any:
                out = fn(x, *rest)
                out.wait_to_read()
                return out

            return forward
        leaf = x.copy()
        leaf.attach_grad()

        def run() -> Any:
            with autograd.record():
                loss = fn(leaf, *rest)
            loss.backward()
            leaf.grad.wait_to_read()
            return leaf.grad

        return run


# ---- JAX -------------------------------------------------------------------------------------


class JaxDriver(Driver):
    name = "jax"
    compiler = "jax.jit"
    memory_method = {
        "eager": "peak RSS above the RSS before the first full-size call (fresh process)",
        "compiled": "XLA memory_analysis(): temp + output bytes of the compiled fwd+bwd",
    }
    exact_memory = ("compiled",)

    def setup(self, threads: int) -> dict[str, Any]:
        import jax

        return {
            "XLA CPU threads": f"sized by the process's CPU affinity ({len(os.sched_getaffinity(0))} cores)",
            "XLA_FLAGS": os.environ.get("XLA_FLAGS", ""),
            "jax devices": str(jax.devices()),
        }

    def versions(self) -> dict[str, str]:
        import jax
        import jaxlib
        import optax

        return {
            **super().versions(),
            "jax": jax.__version__,
            "jaxlib": jaxlib.__version__,
            "optax": optax.__version__,
        }

    def array(self, a: np.ndarray) -> Any:
        import jax.numpy as jnp

        return jnp.asarray(a)

    def _body(self, impl: Impl, pass_: str) -> Callable[..., Any]:
        import jax
        import jax.numpy as jnp

        fn = impl.fn
        if pass_ == "fwd":
            return fn
        return jax.value_and_grad(lambda x, *rest: jnp.sum(fn(x, *rest)))

    def step(self, impl: Impl, pass_: str, exec_: str) -> Step:
        import jax

        body = self._body(impl, pass_)
        if exec_ == "compiled":
            body = jax.jit(body)
        args = impl.args
        return lambda: jax.block_until_ready(body(*args))

    def xla_memory(self, impl: Impl) -> dict[str, Any]:
        import jax

        compiled = jax.jit(self._body(impl, "fwd+bwd")).lower(*impl.args).compile()
        analysis = compiled.memory_analysis()
        peak = int(analysis.temp_size_in_bytes) + int(analysis.output_size_in_bytes)
        return {"peak_bytes": peak, "method": self.memory_method["compiled"]}


_DRIVERS = {d.name: d for d in (NumpyDriver, TorchDriver, TensorflowDriver, MxnetDriver, JaxDriver)}


def get_driver(name: str) -> Driver:
    return _DRIVERS[name]()


# ---- peak RSS ----------------------------------------------------------------------------------


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current RSS


def rss_peak(step: Step, warm: Step) -> dict[str, Any]:
    """Peak RSS of ``step`` above the RSS just before its first call; ``warm`` runs first.

    The step runs twice after the baseline is taken: the first call (which may compile or grow
    a framework's memory pool) and a second one; both peaks are measured against the same
    baseline, so memory a framework keeps cached between calls still counts. The second is
    reported as the peak, the first as ``first_call_bytes``.
    """
    warm()
    warm()
    baseline = _status_kib("VmRSS")
    _reset_peak()
    step()
    first = _status_kib("VmHWM") - baseline
    _reset_peak()
    step()
    second = _status_kib("VmHWM") - baseline
    return {"peak_bytes": second * 1024, "first_call_bytes": first * 1024}

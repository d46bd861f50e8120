"""The backends the parity matrix runs on: how to move NumPy inputs in, results out, and
differentiate, for each installed framework, on each device.

Inputs are always made in NumPy, cast to the test dtype in NumPy (bfloat16 through
``ml_dtypes``), and then moved to each backend bit for bit, so every backend sees identical
bits. Each backend is set up once per process (JAX with 64-bit enabled, array-api-strict
with its default flags); nothing here changes polyloss's own behaviour.

``dtypes`` are the float32/float64 every backend runs (the test suite's dtypes);
``low_precision`` the float16/bfloat16 a backend also has (``parity_dtypes`` is both).
``devices`` are "cpu" and "cuda"; ``device_status(device)`` says whether a device can run
here, and why not.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["TestBackend", "BACKENDS", "available_backends", "get_backend", "numpy_dtype",
           "LOW_PRECISION", "DEVICES", "gpu_present"]

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

LOW_PRECISION = ("float16", "bfloat16")
DEVICES = ("cpu", "cuda")


def numpy_dtype(name: str) -> np.dtype:
    """The NumPy dtype for a dtype name; bfloat16 is ``ml_dtypes.bfloat16`` (the type JAX and
    TensorFlow use for it), imported only when asked for."""
    if name == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def dtype_name(a: Any) -> str:
    """The dtype of an array (NumPy or any framework's) as a plain name: ``"float32"``."""
    d = getattr(a, "dtype", None)
    if d is None:
        return type(a).__name__
    name = getattr(d, "name", None)  # NumPy, TensorFlow, JAX
    if not isinstance(name, str):
        name = str(d)
    return name.rpartition(".")[2]  # torch.float32 -> float32


@functools.cache
def gpu_present() -> str | None:
    """``None`` when an NVIDIA GPU is visible to this machine, else why there is none.

    A cheap check made without importing any framework: the NVIDIA driver's device nodes.
    Whether a framework can use the GPU is asked of the framework itself
    (:meth:`TestBackend.device_status`)."""
    if os.path.exists("/proc/driver/nvidia/gpus") and os.listdir("/proc/driver/nvidia/gpus"):
        return None
    if os.path.exists("/dev/nvidia0"):
        return None
    return "no NVIDIA GPU on this machine (no /dev/nvidia0, no /proc/driver/nvidia/gpus)"


@dataclass
class TestBackend:
    """One framework as the parity matrix drives it."""

    name: str
    module: str
    dtypes: tuple[str, ...] = ("float32", "float64")
    compiled: str | None = None  # name of the compiled mode, if any
    differentiable: bool = True
    low_precision: tuple[str, ...] = ()  # float16 / bfloat16, where the framework has them
    devices: tuple[str, ...] = ("cpu",)  # the devices the framework can run on
    _state: dict = field(default_factory=dict, repr=False)

    @property
    def parity_dtypes(self) -> tuple[str, ...]:
        return self.dtypes + self.low_precision

    def available(self) -> bool:
        return self.unavailable_reason() is None

    def unavailable_reason(self) -> str | None:
        """``None`` when the framework is installed and usable in this environment."""
        if self.name == "mxnet" and int(np.__version__.split(".")[0]) >= 2:
            return "MXNet 1.9.1 cannot run with NumPy 2 (only the full environment has it)"
        if importlib.util.find_spec(self.module) is None:
            return f"{self.module} is not installed"
        if "cpu" not in self.devices:  # CuPy: a GPU-only framework needs the GPU to be usable
            return gpu_present()
        return None

    def setup(self) -> None:
        if self._state.get("ready"):
            return
        _SETUP[self.name]()
        self._state["ready"] = True

    def device_status(self, device: str) -> str | None:
        """``None`` when this backend can run on ``device`` here, else the reason it cannot."""
        if device not in self.devices:
            return f"{self.name} has no {device} device in the parity matrix"
        if device == "cpu":
            return None
        if device in self._state.get("device_status", {}):
            return self._state["device_status"][device]
        reason = gpu_present()
        if reason is None:
            self.setup()
            reason = _CUDA_STATUS[self.name]()
        self._state.setdefault("device_status", {})[device] = reason
        return reason

    def asarray(self, a: np.ndarray, device: str = "cpu") -> Any:
        self.setup()
        return _FROM_NUMPY[self.name](np.asarray(a), device)

    def to_numpy(self, x: Any) -> np.ndarray:
        return _TO_NUMPY[self.name](x)

    def value_and_grad(
        self, fn: Callable[..., Any], arrays: list[np.ndarray], argnum: int = 0, device: str = "cpu"
    ) -> tuple[np.ndarray, np.ndarray]:
        """Value of ``fn(*arrays)`` and the gradient of its sum w.r.t. ``arrays[argnum]``."""
        self.setup()
        return _VALUE_AND_GRAD[self.name](fn, [np.asarray(a) for a in arrays], argnum, device)

    def run_compiled(self, fn: Callable[..., Any], arrays: list[np.ndarray]) -> np.ndarray:
        """``fn`` under the backend's compiler (``jax.jit``, ``tf.function``, ``torch.compile``)."""
        self.setup()
        return _COMPILED[self.name](fn, [np.asarray(a) for a in arrays])


# ---- per-backend set-up -------------------------------------------------------------------

def _setup_numpy() -> None:
    pass


def _setup_torch() -> None:
    import torch  # noqa: F401 - import torch before TensorFlow (shared libraries)


def _setup_jax() -> None:
    import jax

    jax.config.update("jax_enable_x64", True)


def _setup_tensorflow() -> None:
    if importlib.util.find_spec("torch") is not None:
        _setup_torch()  # torch's shared libraries must be loaded before TensorFlow's
    import tensorflow as tf

    try:
        tf.get_logger().setLevel("ERROR")
    except Exception:
        pass


def _setup_mxnet() -> None:
    import polyloss.backends.mxnet  # noqa: F401 - applies the numpy.bool shim


def _setup_strict() -> None:
    import array_api_strict  # noqa: F401


def _setup_dask() -> None:
    import dask.array  # noqa: F401


def _setup_cupy() -> None:
    import cupy  # noqa: F401


_SETUP = {
    "numpy": _setup_numpy, "torch": _setup_torch, "jax": _setup_jax,
    "tensorflow": _setup_tensorflow, "mxnet": _setup_mxnet,
    "array_api_strict": _setup_strict, "dask": _setup_dask, "cupy": _setup_cupy,
}


# ---- can the framework use the GPU (asked only when one is present) --------------------------

def _cuda_torch() -> str | None:
    import torch

    return None if torch.cuda.is_available() else (
        f"torch {torch.__version__} cannot use the GPU (torch.cuda.is_available() is False)")


def _cuda_jax() -> str | None:
    import jax

    try:
        jax.devices("gpu")
    except RuntimeError as exc:
        return f"jax {jax.__version__} has no GPU backend ({str(exc).splitlines()[0]})"
    return None


def _cuda_tensorflow() -> str | None:
    import tensorflow as tf

    return None if tf.config.list_physical_devices("GPU") else (
        f"tensorflow {tf.__version__} lists no GPU (tf.config.list_physical_devices('GPU') is empty)")


def _cuda_mxnet() -> str | None:
    import mxnet as mx

    try:
        n = mx.context.num_gpus()
    except Exception as exc:  # a CPU-only build raises instead of returning 0
        return f"mxnet {mx.__version__} has no GPU support ({type(exc).__name__}: {exc})"
    return None if n > 0 else f"mxnet {mx.__version__} sees no GPU (mx.context.num_gpus() is 0)"


def _cuda_cupy() -> str | None:
    import cupy

    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        return f"cupy cannot reach a GPU ({type(exc).__name__}: {exc})"
    return None if n > 0 else "cupy sees no GPU"


def _cuda_none() -> str | None:
    return "runs on the CPU only"


_CUDA_STATUS: dict[str, Callable[[], str | None]] = {
    "numpy": _cuda_none, "array_api_strict": _cuda_none, "dask": _cuda_none,
    "torch": _cuda_torch, "jax": _cuda_jax, "tensorflow": _cuda_tensorflow, "mxnet": _cuda_mxnet,
    "cupy": _cuda_cupy,
}


# ---- moving arrays ------------------------------------------------------------------------

def _is_bfloat16(a: np.ndarray) -> bool:
    return a.dtype.kind == "V" and a.dtype.name == "bfloat16"


def _torch_from(a: np.ndarray, device: str = "cpu") -> Any:
    import torch

    if _is_bfloat16(a):  # torch.from_numpy has no bfloat16: move the bits, then view them
        bits = torch.from_numpy(np.ascontiguousarray(a).view(np.int16).copy())
        t = bits.view(torch.bfloat16)
    else:
        t = torch.from_numpy(np.array(a, copy=True, order="C"))
    return t if device == "cpu" else t.to(device)


def _jax_device(device: str) -> Any:
    import jax

    return jax.devices("cpu" if device == "cpu" else "gpu")[0]


def _jax_from(a: np.ndarray, device: str = "cpu") -> Any:
    import jax
    import jax.numpy as jnp

    if device == "cpu":
        return jnp.asarray(a)
    return jax.device_put(a, _jax_device(device))


def _tf_device(device: str) -> str:
    return "/CPU:0" if device == "cpu" else "/GPU:0"


def _tf_from(a: np.ndarray, device: str = "cpu") -> Any:
    import tensorflow as tf

    if device == "cpu":
        return tf.constant(a)
    with tf.device(_tf_device(device)):
        return tf.identity(tf.constant(a))


def _mx_context(device: str) -> Any:
    import mxnet as mx

    return mx.cpu() if device == "cpu" else mx.gpu(0)


def _mx_from(a: np.ndarray, device: str = "cpu") -> Any:
    import mxnet as mx

    with mx.util.np_shape(True):
        return mx.np.array(a, dtype=a.dtype, ctx=_mx_context(device))


def _strict_from(a: np.ndarray, device: str = "cpu") -> Any:
    import array_api_strict as xp

    return xp.asarray(a)


def _dask_from(a: np.ndarray, device: str = "cpu") -> Any:
    import dask.array as da

    return da.from_array(a, chunks=tuple(max(1, (s + 1) // 2) for s in a.shape) or ())


def _cupy_from(a: np.ndarray, device: str = "cuda") -> Any:
    import cupy

    return cupy.asarray(a)


def _to_numpy(x: Any) -> np.ndarray:
    """``x`` as a NumPy array of its own dtype (a torch bfloat16 tensor as ``ml_dtypes``')."""
    t = type(x).__module__.partition(".")[0]
    if t == "torch":
        x = x.detach().cpu()
        if str(x.dtype) == "torch.bfloat16":  # NumPy has no bfloat16: move the bits back
            import torch

            return x.view(torch.int16).numpy().view(numpy_dtype("bfloat16"))
        return x.numpy()
    if t == "tensorflow":
        return np.asarray(x.numpy())
    if t == "mxnet":
        return x.asnumpy()
    if t == "dask":
        return np.asarray(x.compute())
    if t == "array_api_strict":
        return np.asarray(x._array)
    if t == "cupy":
        return x.get()
    return np.asarray(x)


_FROM_NUMPY: dict[str, Callable[..., Any]] = {
    "numpy": lambda a, device="cpu": a, "torch": _torch_from, "jax": _jax_from,
    "tensorflow": _tf_from, "mxnet": _mx_from, "array_api_strict": _strict_from,
    "dask": _dask_from, "cupy": _cupy_from,
}
_TO_NUMPY: dict[str, Callable[[Any], np.ndarray]] = {k: _to_numpy for k in _FROM_NUMPY}


# ---- gradients ------------------------------------------------------------------------------

def _vg_numpy(fn, arrays, argnum, device="cpu"):
    raise NotImplementedError("NumPy has no autograd")


def _vg_torch(fn, arrays, argnum, device="cpu"):
    import torch

    ts = [_torch_from(a, device) for a in arrays]
    ts[argnum].requires_grad_(True)
    out = fn(*ts)
    (g,) = torch.autograd.grad(out.sum(), ts[argnum], allow_unused=True)
    g = torch.zeros_like(ts[argnum]) if g is None else g
    return _to_numpy(out), _to_numpy(g)


def _vg_jax(fn, arrays, argnum, device="cpu"):
    import jax
    import jax.numpy as jnp

    xs = [_jax_from(a, device) for a in arrays]

    def scalar(x):
        args = list(xs)
        args[argnum] = x
        out = fn(*args)
        return jnp.sum(out), out

    (_, out), g = jax.value_and_grad(scalar, has_aux=True)(xs[argnum])
    return np.asarray(out), np.asarray(g)


def _vg_tensorflow(fn, arrays, argnum, device="cpu"):
    import tensorflow as tf

    with tf.device(_tf_device(device)):
        xs = [_tf_from(a, device) for a in arrays]
        with tf.GradientTape() as tape:
            tape.watch(xs[argnum])
            out = fn(*xs)
            total = tf.reduce_sum(out)
        g = tape.gradient(total, xs[argnum])
        g = tf.zeros_like(xs[argnum]) if g is None else g
    return np.asarray(out.numpy()), np.asarray(g.numpy())


def _vg_mxnet(fn, arrays, argnum, device="cpu"):
    import mxnet as mx
    from mxnet import autograd

    with mx.util.np_shape(True):
        xs = [mx.np.array(a, dtype=a.dtype, ctx=_mx_context(device)) for a in arrays]
        xs[argnum].attach_grad()
        with autograd.record():
            out = fn(*xs)
            total = out.sum() if out.ndim else out
        total.backward()
        return out.asnumpy(), xs[argnum].grad.asnumpy()


_VALUE_AND_GRAD = {
    "numpy": _vg_numpy, "torch": _vg_torch, "jax": _vg_jax,
    "tensorflow": _vg_tensorflow, "mxnet": _vg_mxnet,
}


# ---- compiled -------------------------------------------------------------------------------

def _compiled_jax(fn, arrays):
    import jax
    import jax.numpy as jnp

    return np.asarray(jax.jit(fn)(*[jnp.asarray(a) for a in arrays]))


def _compiled_tensorflow(fn, arrays):
    import tensorflow as tf

    return np.asarray(tf.function(fn)(*[tf.constant(a) for a in arrays]).numpy())


def _compiled_torch(fn, arrays):
    import torch

    compiled = torch.compile(fn, fullgraph=True, backend="eager")
    return _to_numpy(compiled(*[_torch_from(a) for a in arrays]))


_COMPILED = {"jax": _compiled_jax, "tensorflow": _compiled_tensorflow, "torch": _compiled_torch}


_GPU = ("cpu", "cuda")
BACKENDS: dict[str, TestBackend] = {
    b.name: b
    for b in (
        TestBackend("numpy", "numpy", differentiable=False, low_precision=("float16",)),
        TestBackend("torch", "torch", compiled="torch.compile", low_precision=LOW_PRECISION,
                    devices=_GPU),
        TestBackend("jax", "jax", compiled="jax.jit", low_precision=LOW_PRECISION, devices=_GPU),
        TestBackend("tensorflow", "tensorflow", compiled="tf.function",
                    low_precision=LOW_PRECISION, devices=_GPU),
        TestBackend("mxnet", "mxnet", low_precision=("float16",), devices=_GPU),
        # the Array API standard has no float16: array-api-strict refuses it
        TestBackend("array_api_strict", "array_api_strict", differentiable=False),
        TestBackend("dask", "dask", differentiable=False, low_precision=("float16",)),
        # CuPy arrays live on the GPU only
        TestBackend("cupy", "cupy", differentiable=False, low_precision=("float16",),
                    devices=("cuda",)),
    )
}


def available_backends(names: list[str] | None = None) -> list[TestBackend]:
    """The installed backends (optionally only ``names``), in a fixed order."""
    out = []
    for name, b in BACKENDS.items():
        if names and name not in names:
            continue
        if b.available():
            out.append(b)
    return out


def get_backend(name: str) -> TestBackend:
    return BACKENDS[name]

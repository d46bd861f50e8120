"""The backends the parity matrix runs on: how to move NumPy inputs in, results out, and
differentiate, for each installed framework.

Inputs are always made in NumPy, cast to the test dtype in NumPy, and then moved to each
backend, so every backend sees identical bits. Each backend is set up once per process
(JAX with 64-bit enabled, array-api-strict with its default flags); nothing here changes
polyloss's own behaviour.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["TestBackend", "BACKENDS", "available_backends", "get_backend"]

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@dataclass
class TestBackend:
    """One framework as the parity matrix drives it."""

    name: str
    module: str
    dtypes: tuple[str, ...] = ("float32", "float64")
    compiled: str | None = None  # name of the compiled mode, if any
    differentiable: bool = True
    _state: dict = field(default_factory=dict, repr=False)

    def available(self) -> bool:
        if self.name == "mxnet":
            # MXNet 1.9.1 cannot run with NumPy 2; only the "full" environment has it.
            if int(np.__version__.split(".")[0]) >= 2:
                return False
        return importlib.util.find_spec(self.module) is not None

    def setup(self) -> None:
        if self._state.get("ready"):
            return
        _SETUP[self.name]()
        self._state["ready"] = True

    def asarray(self, a: np.ndarray) -> Any:
        self.setup()
        return _FROM_NUMPY[self.name](np.asarray(a))

    def to_numpy(self, x: Any) -> np.ndarray:
        return _TO_NUMPY[self.name](x)

    def value_and_grad(
        self, fn: Callable[..., Any], arrays: list[np.ndarray], argnum: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """Value of ``fn(*arrays)`` and the gradient of its sum w.r.t. ``arrays[argnum]``."""
        self.setup()
        return _VALUE_AND_GRAD[self.name](fn, [np.asarray(a) for a in arrays], argnum)

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


_SETUP = {
    "numpy": _setup_numpy, "torch": _setup_torch, "jax": _setup_jax,
    "tensorflow": _setup_tensorflow, "mxnet": _setup_mxnet,
    "array_api_strict": _setup_strict, "dask": _setup_dask,
}


# ---- moving arrays ------------------------------------------------------------------------

def _torch_from(a: np.ndarray) -> Any:
    import torch

    return torch.from_numpy(np.array(a, copy=True, order="C"))


def _jax_from(a: np.ndarray) -> Any:
    import jax.numpy as jnp

    return jnp.asarray(a)


def _tf_from(a: np.ndarray) -> Any:
    import tensorflow as tf

    return tf.constant(a)


def _mx_from(a: np.ndarray) -> Any:
    import mxnet as mx

    with mx.util.np_shape(True):
        return mx.np.array(a, dtype=a.dtype)


def _strict_from(a: np.ndarray) -> Any:
    import array_api_strict as xp

    return xp.asarray(a)


def _dask_from(a: np.ndarray) -> Any:
    import dask.array as da

    return da.from_array(a, chunks=tuple(max(1, (s + 1) // 2) for s in a.shape) or ())


def _to_numpy(x: Any) -> np.ndarray:
    t = type(x).__module__.partition(".")[0]
    if t == "torch":
        return x.detach().cpu().numpy()
    if t == "tensorflow":
        return np.asarray(x.numpy())
    if t == "mxnet":
        return x.asnumpy()
    if t == "dask":
        return np.asarray(x.compute())
    if t == "array_api_strict":
        return np.asarray(x._array)
    return np.asarray(x)


_FROM_NUMPY: dict[str, Callable[[np.ndarray], Any]] = {
    "numpy": lambda a: a, "torch": _torch_from, "jax": _jax_from, "tensorflow": _tf_from,
    "mxnet": _mx_from, "array_api_strict": _strict_from, "dask": _dask_from,
}
_TO_NUMPY: dict[str, Callable[[Any], np.ndarray]] = {k: _to_numpy for k in _FROM_NUMPY}


# ---- gradients ------------------------------------------------------------------------------

def _vg_numpy(fn, arrays, argnum):
    raise NotImplementedError("NumPy has no autograd")


def _vg_torch(fn, arrays, argnum):
    import torch

    ts = [_torch_from(a) for a in arrays]
    ts[argnum].requires_grad_(True)
    out = fn(*ts)
    (g,) = torch.autograd.grad(out.sum(), ts[argnum], allow_unused=True)
    g = torch.zeros_like(ts[argnum]) if g is None else g
    return _to_numpy(out), _to_numpy(g)


def _vg_jax(fn, arrays, argnum):
    import jax
    import jax.numpy as jnp

    xs = [jnp.asarray(a) for a in arrays]

    def scalar(x):
        args = list(xs)
        args[argnum] = x
        out = fn(*args)
        return jnp.sum(out), out

    (_, out), g = jax.value_and_grad(scalar, has_aux=True)(xs[argnum])
    return np.asarray(out), np.asarray(g)


def _vg_tensorflow(fn, arrays, argnum):
    import tensorflow as tf

    xs = [tf.constant(a) for a in arrays]
    with tf.GradientTape() as tape:
        tape.watch(xs[argnum])
        out = fn(*xs)
        total = tf.reduce_sum(out)
    g = tape.gradient(total, xs[argnum])
    g = tf.zeros_like(xs[argnum]) if g is None else g
    return np.asarray(out.numpy()), np.asarray(g.numpy())


def _vg_mxnet(fn, arrays, argnum):
    import mxnet as mx
    from mxnet import autograd

    with mx.util.np_shape(True):
        xs = [mx.np.array(a, dtype=a.dtype) for a in arrays]
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


BACKENDS: dict[str, TestBackend] = {
    b.name: b
    for b in (
        TestBackend("numpy", "numpy", dtypes=("float32", "float64"), differentiable=False),
        TestBackend("torch", "torch", dtypes=("float32", "float64"), compiled="torch.compile"),
        TestBackend("jax", "jax", dtypes=("float32", "float64"), compiled="jax.jit"),
        TestBackend("tensorflow", "tensorflow", dtypes=("float32", "float64"),
                    compiled="tf.function"),
        TestBackend("mxnet", "mxnet", dtypes=("float32", "float64")),
        TestBackend("array_api_strict", "array_api_strict", differentiable=False),
        TestBackend("dask", "dask", differentiable=False),
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

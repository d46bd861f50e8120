"""Which Array API namespace serves a call's arrays.

Resolution goes by the type of each input, cached per type, and imports nothing that
is not already imported by the caller (a torch tensor means torch is loaded). NumPy,
torch, JAX, Dask, CuPy and array-api-strict are served through array-api-compat;
TensorFlow and MXNet through polyloss's own adapters (``tensorflow.py``,
``mxnet.py``). Python scalars and ``None`` are ignored; arrays of two frameworks in
one call are a ``TypeError`` naming both. There is no global backend switch.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Backend", "backend_of", "array_namespace", "device_of", "check_same_device"]

_PY_SCALARS = (int, float, bool, complex)
_NO_SCOPE = contextlib.nullcontext()  # reusable: entered by every call on most backends


@dataclass(frozen=True, eq=False)
class Backend:
    """One framework's view of its arrays, as polyloss needs it.

    ``xp`` is the Array API namespace. ``to_xp`` converts an input into the array
    type ``xp`` works on, and ``from_xp`` converts a result back into the type the
    caller passed (only MXNet's classic ``mx.nd.NDArray`` needs either).
    ``scope`` is a context manager factory entered while a loss is computed (MXNet
    needs NumPy shape semantics for 0-d and zero-size arrays). ``stop_gradient`` returns
    its argument with no gradient flowing back through it (the identity where there is no
    autograd); conventions use it to reproduce a framework's hand-written backward.
    ``values_known(x)`` says whether ``x``'s values can be read now (not a jit tracer or a
    lazy graph), so eager calls can validate labels. ``host_values(x)`` is ``x`` (whose values
    are known) as a NumPy array where that needs no copy across devices (arrays in host
    memory), else ``None``: value checks then run in NumPy, one read instead of one framework
    operation (and for MXNet one engine synchronisation) per step of the check.
    """

    framework: str
    xp: Any
    device: Callable[[Any], Any]
    float_dtypes: frozenset = field(default_factory=frozenset)
    low_float_dtypes: frozenset | None = None  # float16/bfloat16 (None: compare by name)
    to_xp: Callable[[Any], Any] | None = None
    from_xp: Callable[[Any], Any] | None = None
    scope: Callable[[], contextlib.AbstractContextManager] = lambda: _NO_SCOPE
    stop_gradient: Callable[[Any], Any] = lambda x: x
    values_known: Callable[[Any], bool] = lambda x: True
    host_values: Callable[[Any], Any] = lambda x: None
    index_dtype: Any = None  # where fixed (None: ask the namespace; JAX's follows its x64 switch)

    def is_floating(self, dtype: Any) -> bool:
        if dtype in self.float_dtypes:
            return True
        try:
            return bool(self.xp.isdtype(dtype, "real floating"))
        except (TypeError, ValueError, AttributeError):
            return False


_CACHE: dict[type, Backend] = {}


def _cpu(_x: Any) -> str:
    return "cpu"


def _compat_device(x: Any) -> Any:
    import array_api_compat

    try:
        return array_api_compat.device(x)
    except Exception:  # a tracer or lazy array without a concrete device
        return None


def _numpy_backend() -> Backend:
    import numpy as np

    from polyloss.backends import numpy_namespace as xp

    floats = frozenset(np.dtype(t) for t in (np.float16, np.float32, np.float64))
    return Backend("numpy", xp, _cpu, floats, frozenset((np.dtype(np.float16),)),
                   host_values=lambda x: x, index_dtype=_namespace_index_dtype(xp))


def _namespace_index_dtype(xp: Any) -> Any:
    return xp.__array_namespace_info__().default_dtypes()["indexing"]


def _torch_backend() -> Backend:
    import torch

    from polyloss.backends import torch_namespace as xp

    floats = frozenset((torch.float16, torch.bfloat16, torch.float32, torch.float64))
    return Backend(
        "torch", xp, lambda x: x.device, floats, frozenset((torch.float16, torch.bfloat16)),
        stop_gradient=lambda x: x.detach(),
        # meta tensors (shapes only) have no values to read either
        values_known=lambda x: not torch.compiler.is_compiling() and getattr(x, "is_meta", False) is False,
        host_values=_torch_host_values, index_dtype=_namespace_index_dtype(xp),
    )


def _torch_host_values(x: Any) -> Any:
    if x.device.type != "cpu" or x.is_conj() or x.is_neg():
        return None
    try:
        return x.detach().numpy()
    except (RuntimeError, TypeError):  # sparse or quantized, or no NumPy dtype (bfloat16)
        return None


def _jax_backend() -> Backend:
    import jax
    import jax.numpy as jnp
    import numpy as np

    from polyloss.backends import jax_namespace as xp

    floats = frozenset(
        np.dtype(t) for t in (jnp.float16, jnp.bfloat16, jnp.float32, jnp.float64)
    )
    try:  # inside a trace even values derived from concrete captured arrays are tracers
        from jax._src.core import trace_state_clean
    except ImportError:  # pragma: no cover - older or newer JAX
        def trace_state_clean() -> bool:
            return True

    return Backend(
        "jax", xp, _compat_device, floats,
        frozenset(np.dtype(t) for t in (jnp.float16, jnp.bfloat16)),
        stop_gradient=jax.lax.stop_gradient,
        values_known=lambda x: not isinstance(x, jax.core.Tracer) and trace_state_clean(),
        host_values=_jax_host_values,
    )


def _jax_host_values(x: Any) -> Any:
    import numpy as np

    devices = getattr(x, "devices", None)
    if devices is None or any(d.platform != "cpu" for d in devices()):
        return None
    return np.asarray(x)


def _compat_backend(name: str, x: Any) -> Backend:
    import array_api_compat
    import numpy as np

    xp = array_api_compat.array_namespace(x)
    # Dask and CuPy arrays have NumPy dtypes, and their compat namespaces no float16 name:
    # float16 is recognised by dtype, so it is computed in float32 as everywhere
    low = frozenset((np.dtype(np.float16),)) if name in ("dask", "cupy") else None
    # Dask is lazy: reading values would compute the graph behind the user's back
    return Backend(name, xp, _compat_device, low_float_dtypes=low, values_known=lambda x: name != "dask")


def _tensorflow_backend() -> Backend:
    from polyloss.backends import tensorflow as xp

    return Backend(
        "tensorflow", xp, xp.device_of, xp.FLOAT_DTYPES, frozenset((xp.float16, xp.bfloat16)),
        stop_gradient=xp.stop_gradient, values_known=xp.values_known, host_values=xp.host_values,
        index_dtype=xp.int64,
    )


def _mxnet_backend(array_type: type) -> Backend:
    from polyloss.backends import mxnet as xp

    if xp.is_legacy_ndarray_type(array_type):
        return Backend(
            "mxnet", xp.LEGACY, xp.device_of, xp.FLOAT_DTYPES, xp.LOW_FLOAT_DTYPES,
            to_xp=xp.to_numpy_ndarray, from_xp=xp.to_legacy_ndarray, scope=xp.shape_scope,
            stop_gradient=xp.stop_gradient, host_values=xp.host_values, index_dtype=xp.int64,
        )
    if xp.is_numpy_ndarray_type(array_type):
        return Backend(
            "mxnet", xp, xp.device_of, xp.FLOAT_DTYPES, xp.LOW_FLOAT_DTYPES,
            to_xp=xp.to_numpy_ndarray, scope=xp.shape_scope, stop_gradient=xp.stop_gradient,
            host_values=xp.host_values, index_dtype=xp.int64,
        )
    raise TypeError(
        f"polyloss: {array_type.__module__}.{array_type.__qualname__} is an MXNet symbol; "
        "symbolic (hybridized) graphs are served by the polyloss.gluon loss blocks, "
        "call the loss on mx.np.ndarray or mx.nd.NDArray values here"
    )


def _resolve_type(x: Any) -> Backend:
    t = type(x)
    root = t.__module__.partition(".")[0]
    if root == "numpy":
        return _numpy_backend()
    if root == "torch":
        return _torch_backend()
    if root in ("jax", "jaxlib"):
        return _jax_backend()
    if root == "tensorflow":
        return _tensorflow_backend()
    if root == "mxnet":
        return _mxnet_backend(t)
    if root in ("dask", "cupy", "array_api_strict") or hasattr(x, "__array_namespace__"):
        return _compat_backend(root, x)
    raise TypeError(
        f"polyloss: unsupported array type {t.__module__}.{t.__qualname__}; expected an "
        "array of NumPy, PyTorch, TensorFlow, MXNet, JAX, CuPy, Dask or array-api-strict"
    )


def _backend_for(x: Any) -> Backend:
    t = type(x)
    backend = _CACHE.get(t)
    if backend is None:
        backend = _resolve_type(x)
        if not _torch_compiling():  # torch.compile could not replay a new cache entry
            _CACHE[t] = backend
    return backend


def _torch_compiling() -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and torch.compiler.is_compiling()


def backend_of(*arrays: Any, names: tuple[str, ...] | None = None) -> Backend:
    """The backend of the arrays among ``arrays``; Python scalars and ``None`` are skipped.

    Raises ``TypeError`` if there is no array, or if arrays of two frameworks are mixed
    (``names`` labels the arguments in that message).
    """
    # the hot path of every call: one cache lookup per array, all of one cached backend
    found: Backend | None = None
    for a in arrays:
        if a is None:
            continue
        b = _CACHE.get(type(a))
        if b is None or (b is not found and found is not None):
            return _backend_of_any(arrays, names)
        found = b
    return _backend_of_any(arrays, names) if found is None else found


def _backend_of_any(arrays: tuple, names: tuple[str, ...] | None) -> Backend:
    """:func:`backend_of` for any arguments: scalars, types not seen yet, mixed frameworks."""
    found: Backend | None = None
    found_at = -1
    for i, a in enumerate(arrays):
        if a is None or isinstance(a, _PY_SCALARS):
            continue
        b = _CACHE.get(type(a))
        if b is None:
            try:
                b = _backend_for(a)
            except TypeError as exc:
                where = names[i] if names else f"argument {i}"
                raise TypeError(f"{exc} (got it as {where})") from None
        if found is None:
            found, found_at = b, i
        elif b is not found and b.framework != found.framework:
            first = names[found_at] if names else f"argument {found_at}"
            second = names[i] if names else f"argument {i}"
            raise TypeError(
                f"polyloss: arrays from two frameworks in one call: {first} is a "
                f"{found.framework} array ({_type_name(arrays[found_at])}) but {second} is a "
                f"{b.framework} array ({_type_name(a)}); convert them to one framework first"
            )
    if found is None:
        raise TypeError("polyloss: expected at least one array argument, got only scalars/None")
    return found


def array_namespace(*arrays: Any) -> Any:
    """The Array API namespace of ``arrays`` (see :func:`backend_of`)."""
    return backend_of(*arrays).xp


def device_of(x: Any) -> Any:
    """The device ``x`` lives on (``None`` where it is not known, e.g. a jit tracer)."""
    return backend_of(x).device(x)


def check_same_device(backend: Backend, arrays: tuple, names: tuple[str, ...]) -> None:
    """Raise ``ValueError`` naming the arguments if the arrays live on different devices."""
    if len(names) != len(arrays):
        raise ValueError("polyloss: check_same_device needs one name per array")
    if backend.device is _cpu:  # every array of this framework is in host memory
        return
    first_name = first_dev = None
    device = backend.device
    i = -1
    for a in arrays:
        i += 1
        if a is None or isinstance(a, _PY_SCALARS):
            continue
        dev = device(a)
        if dev is None or (dev.__class__ is str and not dev):  # unknown (a tracer, symbolic)
            continue
        name = names[i]
        if first_dev is None:
            first_name, first_dev = name, dev
        elif dev != first_dev:
            raise ValueError(
                f"polyloss: arrays on two devices: {first_name} is on {first_dev} but "
                f"{name} is on {dev}; move them to one device first"
            )


def _type_name(x: Any) -> str:
    t = type(x)
    return f"{t.__module__}.{t.__qualname__}"


def loaded(module: str) -> bool:
    """Whether ``module`` has been imported already (polyloss never imports a framework)."""
    return module in sys.modules

"""``polyloss port --check``: run the source's native loss, each target's generated snippet and
the polyloss mirror on the same random inputs, and measure how far apart they are.

Inputs are made in NumPy (the kind the source loss takes: logits, probabilities, class
indices, ±1 labels, sequences, ...), cast there, then moved to each framework, so every
side sees the same bits. The reference is the source's native loss on its own framework's
arrays; where that framework is not installed, it is the source's polyloss mirror on NumPy
(said in the output). Tolerance: float64 1e-12 relative; float32 8 ulps × log2(n), n the
number of input elements; results whose terms cancel (log-cosh, ...) are compared relative to
the size of those terms.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import os
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from polyloss.porting.core import Port, mirror_code
from polyloss.porting.frameworks import FRAMEWORKS
from polyloss.porting.model import NoNative

__all__ = ["Comparison", "CheckResult", "check", "available", "tolerance"]

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@dataclass
class Comparison:
    target: str  # the target convention, or "polyloss" for the canonical spelling
    what: str  # "native", "mirror" or "canonical"
    runs_on: str  # the arrays it ran on
    expected: str  # the table's status for this pair: exact, edges or approximate
    error: float | None = None  # max relative difference from the reference (None: not run)
    tol: float = 0.0
    note: str = ""

    @property
    def ran(self) -> bool:
        return self.error is not None

    @property
    def agrees(self) -> bool:
        return self.error is not None and self.error <= self.tol

    @property
    def failed(self) -> bool:
        """A pair the table says is exact (or exact away from edge inputs) that disagrees, or
        that could not run although its framework is installed."""
        if self.expected not in ("exact", "edges"):
            return False
        return (self.error is not None and self.error > self.tol) or self.note.startswith("error")

    def as_dict(self) -> dict[str, Any]:
        return {"target": self.target, "what": self.what, "runs_on": self.runs_on,
                "expected": self.expected, "max_rel_diff": self.error, "tol": self.tol,
                "agrees": self.agrees if self.ran else None, "note": self.note}


@dataclass
class CheckResult:
    dtype: str
    seed: int
    reference: str  # what the comparisons are measured against
    comparisons: list[Comparison] = field(default_factory=list)
    note: str = ""

    @property
    def failed(self) -> bool:
        return any(c.failed for c in self.comparisons)

    def as_dict(self) -> dict[str, Any]:
        return {"dtype": self.dtype, "seed": self.seed, "reference": self.reference,
                "note": self.note, "failed": self.failed,
                "comparisons": [c.as_dict() for c in self.comparisons]}


# ---- frameworks -----------------------------------------------------------------------------

_NEEDS = {"torch": ("torch",), "keras": ("tensorflow", "keras"), "gluon": ("mxnet",),
          "optax": ("jax", "optax")}


def available(convention: str) -> str | None:
    """None if ``convention``'s native framework can run here, else why not."""
    if convention == "polyloss":
        return None
    missing = [m for m in _NEEDS[convention] if importlib.util.find_spec(m) is None]
    if missing:
        return f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed"
    if convention == "gluon" and int(np.__version__.split(".")[0]) >= 2:
        return "MXNet 1.9.1 cannot run with NumPy 2"
    if convention == "keras" and os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
        return "Keras is not on its TensorFlow backend (KERAS_BACKEND)"
    return None


def _missing_imports(code: list[str]) -> str | None:
    """Why ``code`` cannot run here: a module it imports that is not installed."""
    for line in code:
        words = line.split()
        if words[:1] == ["import"] and importlib.util.find_spec(words[1].split(".")[0]) is None:
            return f"{words[1]} is not installed"
    return None


def _setup(convention: str) -> None:
    from polyloss.parity.backends import BACKENDS

    if convention == "optax":
        BACKENDS["jax"].setup()  # 64-bit JAX, as the parity matrix runs it
    elif convention == "keras":
        BACKENDS["torch"].setup() if importlib.util.find_spec("torch") else None
        BACKENDS["tensorflow"].setup()
    elif convention == "gluon":
        BACKENDS["mxnet"].setup()  # the numpy.bool shim before mxnet


def _to_framework(convention: str | None, a: np.ndarray) -> Any:
    if convention is None or convention == "polyloss":
        return a
    if convention == "torch":
        import torch

        return torch.from_numpy(np.array(a, copy=True, order="C"))
    if convention == "keras":
        import tensorflow as tf

        return tf.constant(a)
    if convention == "gluon":
        import mxnet as mx

        return mx.nd.array(a, dtype=a.dtype)
    import jax.numpy as jnp

    return jnp.asarray(a)


def _to_numpy(x: Any) -> Any:
    if isinstance(x, (tuple, list)):
        return tuple(_to_numpy(v) for v in x)
    root = type(x).__module__.partition(".")[0]
    if root == "torch":
        return x.detach().cpu().numpy()
    if root == "tensorflow":
        return np.asarray(x.numpy())
    if root == "mxnet":
        import mxnet as mx

        with mx.util.np_shape(True):
            out = x.asnumpy()
        mx.nd.waitall()
        return out
    return np.asarray(x)


def _run(code: list[str], arrays_on: str | None, inputs: dict[str, np.ndarray]) -> Any:
    """Execute generated ``code`` (imports included) with the inputs bound on ``arrays_on``'s
    framework; the value of ``loss`` in NumPy."""
    namespace: dict[str, Any] = {name: _to_framework(arrays_on, a) for name, a in inputs.items()}
    with warnings.catch_warnings():  # the natives' deprecation and 'mean' warnings
        warnings.simplefilter("ignore")
        if arrays_on == "optax":
            return _to_numpy(_run_jitted(code, namespace))
        exec("\n".join(code), namespace)  # noqa: S102 - our own generated code, never user text
    return _to_numpy(namespace["loss"])


def _run_jitted(code: list[str], arrays: dict[str, Any]) -> Any:
    """JAX code as one ``jax.jit`` function of the arrays: one XLA compilation instead of one
    per operation (the same operations; XLA may round a few of them differently)."""
    names = list(arrays)
    source = "\n".join([f"def _snippet({', '.join(names)}):"] + [f"    {line}" for line in code]
                       + ["    return loss"])
    return _jitted(source)(*(arrays[n] for n in names))


@functools.lru_cache(maxsize=512)
def _jitted(source: str) -> Any:
    """The jitted function of ``source``, kept so that identical snippets (the same port from
    two spellings of one loss) reuse JAX's compilation."""
    import jax

    namespace: dict[str, Any] = {}
    exec(source, namespace)  # noqa: S102 - our own generated code, never user text
    return jax.jit(namespace["_snippet"])


# ---- comparing ------------------------------------------------------------------------------

def tolerance(dtype: str, n: int) -> float:
    """float64: 1e-12 relative; float32: 8 ulps × log2(n)."""
    if dtype == "float64":
        return 1e-12
    return 8.0 * float(np.finfo(np.float32).eps) * max(1.0, math.log2(max(n, 1)))


def _difference(actual: Any, expected: Any, floor: float) -> float:
    if isinstance(expected, tuple) or isinstance(actual, tuple):
        if not (isinstance(expected, tuple) and isinstance(actual, tuple)) or len(actual) != len(expected):
            return math.inf
        return max((_difference(a, e, floor) for a, e in zip(actual, expected, strict=True)),
                   default=0.0)
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    if a.shape != e.shape and a.size == e.size == 1:
        a, e = a.reshape(()), e.reshape(())  # a classic mx.nd scalar is (1,)
    if a.shape != e.shape:
        return math.inf
    same = (a == e) | (np.isnan(a) & np.isnan(e))
    if same.all():
        return 0.0
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        denom = np.maximum(np.abs(e), max(floor, float(np.finfo(np.float64).tiny)))
        err = np.where(same, 0.0, np.abs(a - e) / denom)
    return float(np.where(np.isnan(err), math.inf, err).max())


def _dtype_of(*results: Any) -> str:
    dtypes = []
    for r in results:
        for x in (r if isinstance(r, tuple) else (r,)):
            dtypes.append(np.asarray(x).dtype)
    return "float32" if any(d == np.float32 for d in dtypes) else "float64"


def check(p: Port, dtype: str = "float64", seed: int = 0, mirrors_on: str = "target") -> CheckResult:
    """Run the source native (or its mirror where the native cannot run), every target's
    native snippet and the source mirror on each target's arrays (``mirrors_on="target"``) or
    once on NumPy (``"numpy"``: the mirror tests cover every array type), and the canonical
    spelling; measure each against the reference."""
    call, concept, spec = p.call, p.concept, p.spec
    code_params = [k for k in call.given if type(call.config[k]).__name__ == "Code"]
    if code_params:
        return CheckResult(dtype, seed, "-", note=f"not run: {', '.join(code_params)} is code, which "
                           "polyloss port does not execute")
    rng = np.random.default_rng(seed)
    try:
        inputs = concept.inputs(spec, dtype, rng)
    except NoNative as e:
        return CheckResult(dtype, seed, "-", note=f"not run: {e}")
    n = max((a.size for a in inputs.values()), default=1)
    source = call.convention
    reason = available(source)
    extra = [f"import {call.native().split('.')[0]}"] if call.native().startswith("torchvision") else []
    source_code = list(FRAMEWORKS[source].imports) + extra + [f"loss = {call.native()}"]
    reason = reason or _missing_imports(source_code)
    reference, note = None, ""
    if reason is None:
        try:
            _setup(source)
            reference = _run(source_code, source, inputs)
            label = f"{call.native()} on {'NumPy' if source == 'polyloss' else FRAMEWORKS[source].array_type}"
        except Exception as e:  # a native that refuses these inputs: say so, use the mirror
            note = f"the native raised {type(e).__name__}: {str(e).splitlines()[0][:200]}"
    else:
        note = f"the native cannot run here: {reason}"
    if reference is None:
        reference = _run(mirror_code(call), None, inputs)
        label = f"{call.mirror()} on NumPy ({note})"
    result = CheckResult(dtype, seed, label, note=note)

    def compare(target: str, what: str, code: list[str], arrays_on: str | None, runs_on: str,
                expected: str) -> None:
        comparison = Comparison(target, what, runs_on, expected)
        try:
            if arrays_on not in (None, "polyloss"):
                _setup(arrays_on)
            value = _run(code, arrays_on, inputs)
        except Exception as e:
            comparison.note = f"error: {type(e).__name__}: {str(e).splitlines()[0][:300]}"
            result.comparisons.append(comparison)
            return
        comparison.error = _difference(value, reference, concept.term_scale)
        # a source that computes in float32 whatever its inputs (Keras's CTC) is compared at float32
        compute = "float32" if spec.get("compute_dtype") == "float32" else _dtype_of(value, reference)
        comparison.tol = tolerance(compute, n)
        result.comparisons.append(comparison)

    for target, t in p.targets.items():
        missing = available(target)
        if t.status != "none" and target != source:  # the source's own native is the reference
            not_here = missing or _missing_imports(t.code) or (
                f"the native runs in {', '.join(t.dtypes)} only" if t.dtypes and dtype not in t.dtypes
                else None)
            if not_here:
                result.comparisons.append(Comparison(target, "native", FRAMEWORKS[target].array_type,
                                                     t.status, note=f"not run: {not_here}"))
            else:
                compare(target, "native", t.code, target, FRAMEWORKS[target].array_type, t.status)
        if mirrors_on == "target":
            arrays_on = None if missing or target == "polyloss" else target
            runs_on = "NumPy" if arrays_on is None else FRAMEWORKS[target].array_type
            compare(target, "mirror", t.mirror, arrays_on, runs_on, "exact")
    if mirrors_on != "target":
        compare(source, "mirror", mirror_code(call), None, "NumPy", "exact")
    if p.canonical.status != "none":
        compare("polyloss", "canonical", p.canonical.code, None, "NumPy", p.canonical.status)
    return result

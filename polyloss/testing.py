"""Parity testing for any loss, including a user's own: :func:`assert_parity`.

``assert_parity(fn, make_inputs)`` runs ``fn`` on every installed backend (NumPy, PyTorch,
JAX, TensorFlow, MXNet, array-api-strict, Dask), in each dtype, eagerly and under each
framework's compiler, and compares values and gradients with a float64 reference on the
very same input bits. It raises ``AssertionError`` listing every failing check (backend,
dtype, mode, value or gradient, worst element, actual, expected, error vs tolerance).
The pytest plugin (``polyloss.pytest_plugin``) adds the ``polyloss_backend`` and
``polyloss_parity`` fixtures and the ``polyloss_parity`` marker. See ``docs/testing.md``.

Running JAX sets ``jax_enable_x64`` (float64 needs it), as the parity matrix does.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from polyloss.parity.backends import BACKENDS, TestBackend
from polyloss.parity.run import grad_scale, relative_error, tolerance

__all__ = ["assert_parity", "check_parity", "ParityResult", "ParityCheck", "ParityError",
           "selected_backends", "COMPILED_MODES"]

# the compiled modes each backend is run in when compiled=True (torch.compile uses the
# "eager" backend: Dynamo traces the whole function, fullgraph=True, without generating code)
COMPILED_MODES = {
    "jax": ("jax.jit",),
    "tensorflow": ("tf.function", "tf.function(jit_compile=True)"),
    "torch": ("torch.compile",),
}
DTYPES = ("float16", "float32", "float64")
_REFERENCE_MODES = ("float64 reference", "finite differences")


@dataclass
class ParityCheck:
    """One comparison: a backend x dtype x mode x quantity (``value``, ``grad[k]``, ``dtype``,
    ``error`` when the call raised, ``installed``, ``nothing checked``)."""

    backend: str
    dtype: str
    mode: str
    quantity: str
    error: float  # max relative error (inf: an exception, a shape or dtype mismatch)
    tol: float
    index: tuple | None = None  # the worst element
    actual: Any = None
    expected: Any = None
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.error <= self.tol

    def row(self) -> list[str]:
        index = "" if self.index is None else str(self.index)
        return [self.backend, self.dtype, self.mode, self.quantity, index, _fmt(self.actual),
                _fmt(self.expected), _fmt(self.error), _fmt(self.tol)]


@dataclass
class ParityResult:
    """Every check :func:`check_parity` ran, what it skipped and what it compared with."""

    name: str
    checks: list[ParityCheck] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (what, why)
    reference: str = ""

    @property
    def failures(self) -> list[ParityCheck]:
        return [c for c in self.checks if not c.ok]

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def backends(self) -> list[str]:
        """The backends that were run (the reference included)."""
        return list(dict.fromkeys(c.backend for c in self.checks))

    def report(self) -> str:
        failed = self.failures
        head = (f"parity of {self.name}: {len(failed)} of {len(self.checks)} checks failed"
                if failed else f"parity of {self.name}: all {len(self.checks)} checks passed")
        lines = [head, f"reference: {self.reference}"]
        if failed:
            header = ["backend", "dtype", "mode", "quantity", "worst index", "actual", "expected",
                      "rel. error", "tolerance"]
            lines += ["", *_table([header] + [c.row() for c in failed]),
                      "(rel. error: |actual - expected| / max(|expected|, s); s is atol for values, "
                      "the largest reference gradient element for gradients)"]
            notes = [f"  {c.backend} {c.dtype} {c.mode} {c.quantity}: {c.note}"
                     for c in failed if c.note]
            if notes:
                lines += ["", "notes:", *notes]
        if self.skipped:
            lines += ["", "skipped: " + "; ".join(f"{what} ({why})" for what, why in self.skipped)]
        return "\n".join(lines)

    __str__ = report


class ParityError(AssertionError):
    """Raised by :func:`assert_parity`; ``.result`` holds every check."""

    def __init__(self, result: ParityResult):
        super().__init__(result.report())
        self.result = result


def assert_parity(
    fn: Callable[..., Any],
    make_inputs: Callable[[np.random.Generator, str], Any],
    *,
    backends: Iterable[str] | None = None,
    dtypes: Sequence[str] = ("float32", "float64"),
    grads: bool = True,
    compiled: bool = True,
    argnums: Sequence[int] = (0,),
    rtol: float | Mapping[str, float] | None = None,
    atol: float | None = None,
    reference: str = "numpy-float64",
    finite_differences: int = 64,
    seed: int = 0,
    name: str | None = None,
) -> ParityResult:
    """Check that ``fn`` gives the same values and gradients on every backend.

    ``fn(*arrays)`` takes the arrays ``make_inputs(rng, dtype)`` returns, as each backend's
    own arrays, and returns an array (a loss: any shape; gradients are of its sum).
    ``make_inputs`` returns a NumPy array or a tuple of them, made with ``rng`` (a
    ``numpy.random.Generator`` seeded with ``seed``, fresh for each dtype); floating arrays
    are cast to ``dtype`` in NumPy, integer and boolean ones are left as they are, and every
    backend then gets the same bits.

    Reference: ``fn`` on those bits widened to float64, on NumPy (``reference``
    ``"numpy-float64"``; ``"<backend>-float64"`` names another, e.g. ``"torch-float64"`` for a
    function NumPy cannot run). Reference gradient: the float64 gradient of the first
    installed autograd backend (torch, jax, tensorflow, mxnet; the reference backend itself
    when it has autograd), cross-checked by finite differences in float64 at up to
    ``finite_differences`` elements per argument: central differences where ``fn`` is
    smooth; at a kink, any value between the one-sided derivatives.

    Checked on each selected installed backend (``backends``: names as in
    ``polyloss.parity.backends.BACKENDS``; default: ``$POLYLOSS_BACKENDS`` or all) and dtype,
    in eager mode and, with ``compiled=True``, under ``jax.jit``, ``tf.function`` (with and
    without ``jit_compile=True``) and ``torch.compile(fullgraph=True, backend="eager")``:
    the value (and its dtype: the input dtype where the reference returns float64), and with
    ``grads=True`` the gradient w.r.t. each argument in ``argnums`` on autograd backends.
    Tolerance: ``rtol`` (a number, or a dict by dtype), by default polyloss's parity policy
    (1e-12 for float64; 8 ulps x log2 of the largest input's size for float32/float16),
    relative to ``max(|expected|, atol)`` for values (``atol`` defaults to the smallest
    normal number / rtol) and to the largest reference gradient element for gradients.

    Backends that are not installed are skipped and reported; one named in ``backends`` that
    is not installed is a failed check. Raises :class:`ParityError` (an ``AssertionError``)
    listing every failed check; returns the :class:`ParityResult` otherwise.
    """
    __tracebackhide__ = True  # pytest shows the caller's line and the report
    dtypes = _check_dtypes(dtypes)
    argnums = _check_argnums(argnums)
    ref_backend = _reference_backend(reference)
    explicit = backends is not None
    targets, result = _select(backends, name or getattr(fn, "__name__", repr(fn)))
    result.checks += [ParityCheck(n, "", "", "installed", math.inf, 0.0, note=why)
                      for n, why in result.skipped if explicit and n in BACKENDS]
    if explicit:
        result.skipped = [s for s in result.skipped if s[0] not in BACKENDS]
    grad_ref = None
    if grads:
        grad_ref = ref_backend if ref_backend.differentiable else next(
            (BACKENDS[n] for n in ("torch", "jax", "tensorflow", "mxnet") if BACKENDS[n].available()),
            None)
        if grad_ref is None:
            result.skipped.append(("gradients", "no autograd backend is installed"))
    result.reference = _describe_reference(ref_backend, grad_ref, finite_differences)
    compiled_fns: dict[tuple[str, str], Callable] = {}
    for dtype in dtypes:
        arrays = _inputs(make_inputs, seed, dtype, argnums)
        ref = _reference(fn, arrays, ref_backend, grad_ref, argnums, finite_differences, seed, result)
        if ref is None:
            continue
        n = max(a.size for a in arrays)
        tol = _tolerance(rtol, dtype, n)
        floor = atol if atol is not None else float(np.finfo(dtype).smallest_normal) / tol
        for backend in targets:
            if dtype not in backend.dtypes:
                result.skipped.append((f"{backend.name} {dtype}", "not a dtype its parity backend runs"))
                continue
            modes = ("eager",) + (COMPILED_MODES.get(backend.name, ()) if compiled else ())
            for mode in modes:
                key = (backend.name, mode)
                if key not in compiled_fns:
                    compiled_fns[key] = _compile(backend.name, mode, fn)
                run_fn = compiled_fns[key]
                result.checks += _compare(backend, dtype, mode, run_fn, arrays, ref, argnums,
                                          grads, tol, floor, n)
    if not any(c.mode not in _REFERENCE_MODES for c in result.checks):
        result.checks.append(ParityCheck("", "", "", "nothing checked", math.inf, 0.0, note=(
            "no selected backend ran in any of the dtypes; see skipped")))
    if not result.ok:
        raise ParityError(result)
    return result


def check_parity(fn: Callable[..., Any], make_inputs: Callable[[np.random.Generator, str], Any],
                 **options: Any) -> ParityResult:
    """:func:`assert_parity` (the same options) without the raise: the :class:`ParityResult`
    of every check, passed or failed."""
    try:
        return assert_parity(fn, make_inputs, **options)
    except ParityError as failed:
        return failed.result


def selected_backends(names: Iterable[str] | None = None) -> list[str]:
    """Backend names to run: ``names``, else ``$POLYLOSS_BACKENDS``, else every known one.

    Unknown names are a ``ValueError`` listing the known ones.
    """
    if names is None:
        env = [n.strip() for n in os.environ.get("POLYLOSS_BACKENDS", "").split(",") if n.strip()]
        names = env or list(BACKENDS)
    names = list(names)
    unknown = [n for n in names if n not in BACKENDS]
    if unknown:
        raise ValueError(f"polyloss.testing: unknown backend {unknown[0]!r}; expected one of "
                         + ", ".join(repr(n) for n in BACKENDS))
    return names


def not_installed_reason(backend: TestBackend) -> str:
    if backend.name == "mxnet" and int(np.__version__.split(".")[0]) >= 2:
        return f"MXNet 1.9 needs NumPy < 2; this environment has NumPy {np.__version__}"
    return f"{backend.module} is not installed"


# ---- set-up ---------------------------------------------------------------------------------

def _select(names: Iterable[str] | None, label: str) -> tuple[list[TestBackend], ParityResult]:
    result = ParityResult(label)
    targets = []
    for n in selected_backends(names):
        backend = BACKENDS[n]
        if backend.available():
            targets.append(backend)
        else:
            result.skipped.append((n, not_installed_reason(backend)))
    return targets, result


def _check_dtypes(dtypes: Sequence[str]) -> tuple[str, ...]:
    if isinstance(dtypes, str):
        dtypes = (dtypes,)
    bad = [d for d in dtypes if d not in DTYPES]
    if bad:
        raise ValueError(f"polyloss.testing: dtypes must be among {DTYPES}, got {bad[0]!r}")
    return tuple(dtypes)


def _check_argnums(argnums: Sequence[int]) -> tuple[int, ...]:
    if isinstance(argnums, int):
        argnums = (argnums,)
    if not all(isinstance(a, int) and not isinstance(a, bool) and a >= 0 for a in argnums):
        raise ValueError(f"polyloss.testing: argnums must be indices >= 0, got {argnums!r}")
    return tuple(argnums)


def _reference_backend(reference: str) -> TestBackend:
    backend, _, dtype = reference.partition("-")
    if dtype != "float64" or backend not in BACKENDS:
        raise ValueError(
            f"polyloss.testing: reference must be '<backend>-float64' with a backend among "
            f"{', '.join(BACKENDS)}, got {reference!r}")
    if not BACKENDS[backend].available():
        raise ValueError(f"polyloss.testing: the reference backend {backend} is not installed")
    return BACKENDS[backend]


def _describe_reference(ref: TestBackend, grad_ref: TestBackend | None, fd: int) -> str:
    text = f"{ref.name} float64 (value)"
    if grad_ref is not None:
        check = f", checked by finite differences at up to {fd} elements" if fd else ""
        text += f"; {grad_ref.name} float64 autograd (gradient{check})"
    return text + ", on the same input bits widened to float64"


def _inputs(make_inputs: Callable, seed: int, dtype: str, argnums: tuple[int, ...]) -> list:
    made = make_inputs(np.random.default_rng(seed), dtype)
    made = list(made) if isinstance(made, (tuple, list)) else [made]
    arrays = []
    for i, a in enumerate(made):
        if not isinstance(a, np.ndarray):
            raise TypeError(f"polyloss.testing: make_inputs must return NumPy arrays; input {i} is "
                            f"a {type(a).__module__}.{type(a).__qualname__}")
        arrays.append(a.astype(dtype) if a.dtype.kind == "f" and a.dtype != dtype else a)
    for k in argnums:
        if k >= len(arrays) or arrays[k].dtype.kind != "f":
            raise ValueError(f"polyloss.testing: argnums entry {k} must index a floating input; "
                             f"make_inputs gave {len(arrays)} input(s) of dtypes "
                             f"{[str(a.dtype) for a in arrays]}")
    return arrays


def _tolerance(rtol: float | Mapping[str, float] | None, dtype: str, n: int) -> float:
    if isinstance(rtol, Mapping):
        rtol = rtol.get(dtype)
    return tolerance(dtype, n) if rtol is None else float(rtol)


def _compile(backend: str, mode: str, fn: Callable) -> Callable:
    if mode == "eager":
        return fn
    if mode == "jax.jit":
        import jax

        return jax.jit(fn)
    if mode.startswith("tf.function"):
        import tensorflow as tf

        return tf.function(fn, jit_compile="jit_compile=True" in mode)
    if mode == "torch.compile":
        import torch

        # a fresh code object per check: Dynamo keeps its compiled variants on the top frame's
        # code, and one shared code (every custom_loss wrapper is the same function) would
        # reach its recompile limit and silently fall back to eager
        return torch.compile(_fresh_frame(fn), fullgraph=True, backend="eager")
    raise ValueError(f"polyloss.testing: unknown mode {mode!r} for {backend}")


def _fresh_frame(fn: Callable) -> Callable:
    code = compile("def call(*args):\n    return fn(*args)\n", "<polyloss.testing>", "exec")
    namespace: dict[str, Any] = {"fn": fn}
    exec(code, namespace)
    return namespace["call"]


# ---- the reference --------------------------------------------------------------------------

@dataclass
class _Reference:
    value: np.ndarray
    grads: dict[int, np.ndarray]


def _reference(fn: Callable, arrays: list, ref: TestBackend, grad_ref: TestBackend | None,
               argnums: tuple[int, ...], fd_points: int, seed: int,
               result: ParityResult) -> _Reference | None:
    wide = [a.astype(np.float64) if a.dtype.kind == "f" else a for a in arrays]
    dtype = str(arrays[argnums[0]].dtype) if argnums else "float64"
    try:
        value = np.asarray(_evaluate(ref, fn, wide))
    except Exception as exc:  # nothing to compare with: one failed check
        result.checks.append(ParityCheck(ref.name, dtype, _REFERENCE_MODES[0], "value", math.inf, 0.0,
                                         note=f"{_exc(exc)} (the reference must run on "
                                              f"{ref.name}; see reference=)"))
        return None
    grads: dict[int, np.ndarray] = {}
    if grad_ref is not None:
        for k in argnums:
            try:
                grads[k] = np.asarray(grad_ref.value_and_grad(fn, wide, k)[1], dtype=np.float64)
            except Exception as exc:
                result.checks.append(ParityCheck(grad_ref.name, dtype, _REFERENCE_MODES[0], f"grad[{k}]",
                                                 math.inf, 0.0, note=_exc(exc)))
                continue
            if fd_points:
                check = _finite_differences(fn, ref, wide, k, grads[k], fd_points, seed)
                if check is not None:
                    check.backend, check.dtype = grad_ref.name, dtype
                    result.checks.append(check)
    return _Reference(value, grads)


def _evaluate(backend: TestBackend, fn: Callable, arrays: list) -> np.ndarray:
    return backend.to_numpy(fn(*[backend.asarray(a) for a in arrays]))


def _finite_differences(fn: Callable, backend: TestBackend, arrays: list, k: int,
                        grad: np.ndarray, points: int, seed: int) -> ParityCheck | None:
    """Autograd's ``grad`` against float64 differences of ``sum(fn)`` at up to ``points``
    elements of argument ``k``: where ``fn`` is smooth the one-sided differences agree with
    the central one; at a kink any value between them is a valid (sub)gradient."""
    x = arrays[k]
    if x.size == 0:
        return None
    flat = np.arange(x.size)
    if x.size > points:
        flat = np.sort(np.random.default_rng(seed).choice(x.size, points, replace=False))

    def total(at: int | None, h: float) -> float:
        moved = x.copy()
        if at is not None:
            moved.flat[at] += h
        args = list(arrays)
        args[k] = moved
        return float(np.sum(_evaluate(backend, fn, args), dtype=np.float64))

    eps = float(np.finfo(np.float64).eps)
    f0 = total(None, 0.0)
    scale = grad_scale(grad, x.size)
    worst: ParityCheck | None = None
    for i in flat:
        g = float(grad.flat[i])
        if math.isinf(g):  # an infinite slope (sqrt at 0) has no finite difference to match
            continue
        xi = float(x.flat[i])
        h = (xi + eps ** (1 / 3) * max(1.0, abs(xi))) - xi  # exactly representable step
        fp, fm = total(i, h), total(i, -h)
        forward, backward, central = (fp - f0) / h, (f0 - fm) / h, (fp - fm) / (2 * h)
        slack = 1e-6 * max(scale, abs(g)) + 16 * eps * max(abs(f0), abs(fp), abs(fm), 1e-300) / h
        lo, hi = min(forward, backward) - slack, max(forward, backward) + slack
        if not math.isfinite(central):
            continue
        # a NaN gradient where the function has a finite slope is always a failure
        miss = math.inf if math.isnan(g) else max(lo - g, g - hi, 0.0) / max(scale, abs(central))
        if worst is None or miss > worst.error:
            worst = ParityCheck(
                "", "", _REFERENCE_MODES[1], f"grad[{k}]", miss, 0.0,
                index=tuple(int(j) for j in np.unravel_index(i, x.shape)), actual=g,
                expected=central,
                note=f"autograd {g:.6g} is outside the one-sided differences "
                     f"[{min(forward, backward):.6g}, {max(forward, backward):.6g}] at float64",
            )
    if worst is not None and worst.ok:
        worst.note = ""
    return worst


# ---- comparing ------------------------------------------------------------------------------

def _compare(backend: TestBackend, dtype: str, mode: str, fn: Callable, arrays: list,
             ref: _Reference, argnums: tuple[int, ...], grads: bool, tol: float, floor: float,
             n: int) -> list[ParityCheck]:
    def check(quantity: str, error: float, **kw: Any) -> ParityCheck:
        return ParityCheck(backend.name, dtype, mode, quantity, error, tol, **kw)

    want_grads = [k for k in argnums if k in ref.grads] if grads and backend.differentiable else []
    value = None
    out: list[ParityCheck] = []
    try:
        if want_grads:
            for k in want_grads:
                v, g = backend.value_and_grad(fn, arrays, k)
                value = v if value is None else value
                out.append(_close(check, f"grad[{k}]", g, ref.grads[k],
                                  max(floor, grad_scale(ref.grads[k], n))))
        else:
            value = _evaluate(backend, fn, arrays)
    except Exception as exc:
        return out + [check("error", math.inf, note=_exc(exc))]
    value = np.asarray(value)
    expected_dtype = dtype if ref.value.dtype == np.float64 else str(ref.value.dtype)
    if str(value.dtype) != expected_dtype:
        out.insert(0, check("dtype", math.inf, actual=str(value.dtype), expected=expected_dtype,
                            note=f"returned {value.dtype} for {dtype} inputs"))
    out.insert(0, _close(check, "value", value, ref.value, floor))
    return out


def _close(check: Callable[..., ParityCheck], quantity: str, actual: np.ndarray,
           expected: np.ndarray, floor: float) -> ParityCheck:
    actual, expected = np.asarray(actual), np.asarray(expected)
    if actual.shape != expected.shape:
        return check(quantity, math.inf, actual=f"shape {actual.shape}",
                     expected=f"shape {expected.shape}",
                     note=f"shape {actual.shape}, the reference's is {expected.shape}")
    error = relative_error(actual, expected, floor)
    c = check(quantity, error)
    if error > 0:
        # the worst element, by the same measure, element by element
        errors = [relative_error(a, e, floor) for a, e in zip(actual.flat, expected.flat, strict=True)]
        i = int(np.argmax(errors))
        c.index = tuple(int(j) for j in np.unravel_index(i, actual.shape))
        c.actual, c.expected = actual.flat[i].item(), expected.flat[i].item()
    return c


# ---- report ---------------------------------------------------------------------------------

def _exc(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else ""
    if text.endswith(":") and len(lines) > 1:  # tf.function's "in user code:" ... the error last
        text += " ... " + lines[-1]
    return f"{type(exc).__name__}: {text[:300]}"


def _fmt(x: Any) -> str:
    if x is None:
        return ""
    if isinstance(x, float):
        return "inf" if x == math.inf else f"{x:.6g}"
    return str(x)


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
            for r in rows]


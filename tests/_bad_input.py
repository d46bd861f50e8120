"""The bad-input table: each kind of bad input, what polyloss does with it on each backend, and
the machinery that checks it against every canonical loss and every convention mirror.

One row is one kind of bad input (a shape that would broadcast, a label outside ``[0, C)``,
...). A row picks the cases of ``polyloss.parity.cases`` it applies to (plus a few extra
calls below), spoils their valid inputs, runs them on a backend and classifies what happens:

- ``ValueError`` / ``TypeError``: raised by polyloss's own code (the last frame of the
  traceback is inside the ``polyloss`` package, so a framework's own ``ValueError`` does not
  count), with a message that names an argument of the call and the actual value or shape;
- ``NaN``: the result holds a NaN (propagated, never hidden);
- ``native``: the mirror gives what its native gives on the same input (checked against the
  native where it is installed, otherwise the documented result);
- ``value``: a finite result (accepted by design; the reason is given);
- ``crash:<type>``: anything else (a framework's exception): never expected.

``tests/test_bad_input.py`` runs one test per row and backend; ``docs/reliability.md`` holds the
table this module renders (``python tests/_bad_input.py`` prints it; a test checks that the
docs hold exactly that text), and ``python tests/_bad_input.py --audit`` prints every case's
outcome per row and backend.
"""

from __future__ import annotations

import dis
import importlib
import inspect
import os
import re
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import polyloss
from polyloss.parity.cases import ALL_CASES, Case, make_inputs
from polyloss.parity.run import POLYLOSS_MODULES

BACKEND_COLUMNS = ("numpy", "torch", "jax", "tensorflow", "mxnet", "array_api_strict", "dask")
LAZY_BACKENDS = ("dask",)  # values are never read for a check (that would compute the graph)
# Outcomes: what ``classify`` reports, plus "unchecked" (a lazy backend computes whatever the
# formula gives from an invalid value: a number or NaN, never an exception) and "documented"
# (the empty batch: the native's result, or NaN / 0 / an empty array, on every backend alike).
UNCHECKED = ("value", "NaN", "inf")

# ---- which inputs a case takes ---------------------------------------------------------------

INDEX_DOMAINS = ("class_logits", "log_probs_labels", "probs_labels", "seg_classes", "seg_probs",
                 "label_lists")
CTC_DOMAINS = ("ctc", "ctc_torch", "ctc_torch_blank2", "ctc_keras", "ctc_gluon", "ctc_gluon_tnc",
               "ctc_optax", "ctc_optax_blank4")
# the prediction is a probability (or a probability-like mask) in these cases
PROBABILITY_CASES = ("binary_probs", "seg_probs", "masks", "prob_pairs", "probs_labels")
# the number of classes of a case's class-index target, and where in ``pred`` it is
CLASS_AXIS = {"seg_classes": 1, "seg_probs": 1}
TIME_MAJOR = ("ctc_torch", "ctc_torch_blank2", "ctc_gluon_tnc")  # pred is (T, N, C)

# Extra calls for rows whose losses the parity cases do not call in the needed way.
EXTRA_CASES: list[Case] = [
    Case("poisson", "polyloss.poisson_nll(rate, counts, log_input=False)", "polyloss",
         lambda m, p, t, w: m.poisson_nll(p, t, log_input=False), domain="rates"),
    Case("poisson", "PoissonNLLLoss(log_input=False)", "torch",
         lambda m, p, t, w: m.PoissonNLLLoss(log_input=False)(p, t), domain="rates"),
    Case("poisson", "PoissonNLLLoss(from_logits=False)", "gluon",
         lambda m, p, t, w: m.PoissonNLLLoss(from_logits=False)(p, t), domain="rates"),
    Case("ce", "polyloss.cross_entropy(probs, target_probs, from_logits=False)", "polyloss",
         lambda m, p, t, w: m.cross_entropy(p, t, from_logits=False), domain="prob_pairs"),
    Case("kl", "polyloss.kl_div(q, p, pred_kind='probs')", "polyloss",
         lambda m, p, t, w: m.kl_div(p, t, pred_kind="probs"), domain="prob_pairs"),
    Case("focal", "polyloss.focal(probs, target, from_logits=False)", "polyloss",
         lambda m, p, t, w: m.focal(p, t, from_logits=False), domain="binary_probs"),
    Case("bce", "binary_crossentropy(y_true, y_pred)", "keras",
         lambda m, p, t, w: m.binary_crossentropy(t, p), domain="binary_probs"),
    Case("bce", "binary_cross_entropy(input, target)", "torch",
         lambda m, p, t, w: m.binary_cross_entropy(p, t), domain="binary_probs"),
]
CASES: list[Case] = ALL_CASES + EXTRA_CASES

# Cases that compute arguments from the inputs before polyloss sees them (``l2_loss(p - t)``,
# the linear cross-entropy's weight matrix ``0.1 * pred[:5]``): spoiling their inputs tests
# the case's own arithmetic, not polyloss, so the table leaves them out.
NOT_A_POLYLOSS_CALL = ("l2_loss(predictions)",)


def derives_its_arguments(case: Case) -> bool:
    return case.label in NOT_A_POLYLOSS_CALL or "pred[" in case.label or "input[" in case.label


def _cases(select: Callable[[Case], bool]) -> list[Case]:
    return [c for c in CASES if not derives_its_arguments(c) and select(c)]


def case_id(case: Case) -> str:
    return f"{case.convention}:{case.label}"


# ---- spoiling valid inputs -------------------------------------------------------------------

def _copy(arrays: list) -> list:
    return [None if a is None else np.array(a, copy=True, order="C") for a in arrays]


def _first_label_position(case: Case, target: np.ndarray) -> tuple:
    if case.domain == "label_lists":  # the first row that lists some classes but not all
        partial = (target[:, 0] >= 0) & (target == -1).any(axis=1)
        return (int(np.argmax(partial)), 0)
    return (0,) * target.ndim


def _num_classes(case: Case, pred: np.ndarray) -> int:
    if case.domain in CTC_DOMAINS:
        return pred.shape[-1]
    return pred.shape[CLASS_AXIS.get(case.domain, -1)]


def broadcast_target(case: Case, arrays: list) -> list:
    """A target that broadcasts against the prediction: a trailing axis of size 1."""
    a = _copy(arrays)
    p, t = a[0], a[1]
    a[1] = t[..., :1] if t.ndim == p.ndim else t[..., None]
    return a


def extra_class(case: Case, arrays: list) -> list:
    """A probability/multi-hot target with one class more than the prediction."""
    a = _copy(arrays)
    a[1] = np.concatenate([a[1], a[1][..., :1]], axis=-1)
    return a


def integer_pred(case: Case, arrays: list) -> list:
    a = _copy(arrays)
    a[0] = np.round(a[0]).astype(np.int64)
    return a


def bool_pred(case: Case, arrays: list) -> list:
    a = _copy(arrays)
    a[0] = a[0] > 0
    return a


def complex_pred(case: Case, arrays: list) -> list:
    a = _copy(arrays)
    a[0] = a[0].astype(np.complex128)
    return a


def nan_pred(case: Case, arrays: list) -> list:
    """A NaN where the prediction counts: at the target class for class indices, a whole frame
    of the first sequence for CTC, the first element elsewhere."""
    a = _copy(arrays)
    p, t = a[0], a[1]
    if case.domain in CTC_DOMAINS:
        p[0, 0, :] = np.nan  # (N, T, C): first sequence, first frame; (T, N, C): the same
    elif case.domain in ("class_logits", "log_probs_labels", "probs_labels"):
        p[0, int(t[0])] = np.nan
    elif case.domain in ("seg_classes", "seg_probs"):
        p[0, int(t[0, 0, 0]), 0, 0] = np.nan
    elif case.domain == "label_lists":
        row, _ = _first_label_position(case, t)
        p[row, int(t[row, 0])] = np.nan
    else:
        p.reshape(-1)[0] = np.nan
    return a


def nan_target(case: Case, arrays: list) -> list | None:
    a = _copy(arrays)
    if a[1].dtype.kind != "f":
        return None
    a[1].reshape(-1)[0] = np.nan
    return a


def _batch_axes(case: Case, arrays: list) -> list:
    if case.domain in ("ctc_torch", "ctc_torch_blank2"):
        return [1, 0, 0, 0]
    if case.domain == "ctc_gluon_tnc":
        return [1, 1, None]
    axes = [0, 0, 0, 0]
    if case.weight_kind == "class":
        axes[2] = None
    return axes[: len(arrays)]


def empty_batch(case: Case, arrays: list) -> list:
    """Every per-sample array cut to a batch of 0 (class-weight vectors kept)."""
    a = _copy(arrays)
    for i, axis in enumerate(_batch_axes(case, a)):
        if a[i] is not None and axis is not None:
            a[i] = np.take(a[i], np.arange(0), axis=axis)
    return a


def label_value(value: Callable[[int], float]) -> Callable[[Case, list], list]:
    def spoil(case: Case, arrays: list) -> list:
        a = _copy(arrays)
        t = a[1]
        t[_first_label_position(case, t)] = value(_num_classes(case, a[0]))
        return a

    spoil.__doc__ = "one class index set to a bad value"
    return spoil


def fractional_label(case: Case, arrays: list) -> list:
    a = _copy(arrays)
    t = a[1].astype(a[0].dtype)
    t[_first_label_position(case, t)] += 0.5
    a[1] = t
    return a


def probability(value: float) -> Callable[[Case, list], list]:
    def spoil(case: Case, arrays: list) -> list:
        a = _copy(arrays)
        a[0].reshape(-1)[0] = value
        return a

    return spoil


def short_weight(case: Case, arrays: list) -> list:
    """The weight array (class weights or per-sample weights) one entry short."""
    a = _copy(arrays)
    a[2] = a[2][:-1]
    return a


def negative_weight_entry(case: Case, arrays: list) -> list:
    a = _copy(arrays)
    a[2].reshape(-1)[0] = -1.0
    return a


def negative_rate(case: Case, arrays: list) -> list:
    a = _copy(arrays)
    a[0].reshape(-1)[0] = -1.0
    return a


# ---- running a case ----------------------------------------------------------------------------

def _param_names(obj: Any) -> set[str]:
    names: set[str] = set()
    targets = [obj]
    if inspect.isclass(obj):
        targets += [getattr(obj, m) for m in ("forward", "call", "hybrid_forward", "__call__")
                    if hasattr(obj, m)]
    for t in targets:
        try:
            sig = inspect.signature(t)
        except (TypeError, ValueError):
            continue
        names |= {n for n, p in sig.parameters.items()
                  if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and n not in ("self", "F")}
    return names


def option_defaults(obj: Any) -> dict[str, Any]:
    """The keyword options (name -> default) of a function, or of a class's constructor."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return {}
    return {n: p.default for n, p in sig.parameters.items() if p.default is not p.empty}


class Recorder:
    """Stands in for a polyloss module inside a case's call: records the parameter names of
    what the call uses (to check that an error message names one) and injects ``inject``
    keyword arguments into every function or constructor that takes them."""

    def __init__(self, module: Any, inject: dict | None = None):
        self._module = module
        self._inject = inject or {}
        self.names: set[str] = set()
        self.injected: set[str] = set()

    def __getattr__(self, attr: str) -> Any:
        obj = getattr(self._module, attr)
        if not callable(obj):
            return obj
        self.names |= _param_names(obj)
        extra = {k: v for k, v in self._inject.items() if k in option_defaults(obj)}
        self.injected |= set(extra)

        def call(*args: Any, **kwargs: Any) -> Any:
            out = obj(*args, **{**kwargs, **extra})
            if inspect.isfunction(out):  # a loss factory (make_fenchel_young_loss)
                self.names |= _param_names(out)
            return out

        return call


@dataclass
class Outcome:
    kind: str  # "ValueError", "TypeError", "NaN", "inf", "value", "empty", "crash:<type>", "n/a"
    message: str = ""
    value: Any = None
    names: set = field(default_factory=set)


def _raised_by_polyloss(exc: BaseException) -> bool:
    """A ``raise`` statement in polyloss's own code (not an error from inside a framework's
    operation that polyloss called)."""
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    code = tb.tb_frame.f_code
    package = os.path.dirname(polyloss.__file__)
    # the instruction that raised: a `raise` statement, not a call into a framework's operation
    return code.co_filename.startswith(package) and dis.opname[code.co_code[tb.tb_lasti]] in (
        "RAISE_VARARGS", "RERAISE")


def classify(fn: Callable[[], Any], to_numpy: Callable[[Any], np.ndarray]) -> Outcome:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = fn()
            value = to_numpy(out)
    except (ValueError, TypeError) as exc:
        if _raised_by_polyloss(exc):
            return Outcome(type(exc).__name__, str(exc))
        return Outcome(f"crash:{type(exc).__name__}", str(exc))
    except Exception as exc:  # a framework's own error: what the table must never show
        return Outcome(f"crash:{type(exc).__name__}", str(exc).strip().splitlines()[-1][:300])
    value = np.asarray(value, dtype=np.float64) if value.dtype != object else value
    if value.size == 0:
        return Outcome("empty", value=value)
    if np.isnan(value).any():
        return Outcome("NaN", value=value)
    if np.isinf(value).any():
        return Outcome("inf", value=value)
    return Outcome("value", value=value)


NATIVE_BACKEND = {"torch": "torch", "keras": "tensorflow", "gluon": "mxnet", "optax": "jax"}


def _native_namespace(convention: str) -> Any:
    """The native losses a mirror reproduces, spelled as the parity cases call them (``None``
    for the canonical API, or when the native is not installed here)."""
    import importlib.util

    if convention == "polyloss":
        return None
    needs = {"torch": ("torch",), "keras": ("keras", "tensorflow"), "gluon": ("mxnet",),
             "optax": ("optax",)}[convention]
    if any(importlib.util.find_spec(m) is None for m in needs):
        return None
    if convention == "gluon" and int(np.__version__.split(".")[0]) >= 2:
        return None  # MXNet 1.9 needs NumPy < 2
    if convention == "torch":
        import types

        import torch.nn
        import torch.nn.functional as F

        return types.SimpleNamespace(**vars(F), **{
            k: getattr(torch.nn, k) for k in dir(torch.nn) if k.endswith("Loss")})
    if convention == "keras":
        import keras

        return keras.losses
    if convention == "gluon":
        importlib.import_module("polyloss.backends.mxnet")  # the numpy.bool shim before mxnet
        return importlib.import_module("mxnet.gluon.loss")
    import optax

    return optax.losses


def native_outcome(case: Case, arrays: list) -> Outcome | None:
    """What the real native loss gives for ``case`` on ``arrays`` (``None``: not installed)."""
    lib = _native_namespace(case.convention)
    if lib is None:
        return None
    if case.convention == "gluon":
        import mxnet as mx

        def move(a: np.ndarray) -> Any:
            return mx.nd.array(a, dtype=a.dtype)

        to_numpy = (lambda x: x.asnumpy())  # noqa: E731
    else:
        from polyloss.parity.backends import get_backend

        nb = get_backend(NATIVE_BACKEND[case.convention])
        nb.setup()
        move, to_numpy = nb.asarray, nb.to_numpy
    out = classify(lambda: case.call(lib, *[None if a is None else move(a) for a in arrays]),
                   to_numpy)
    if out.kind.startswith("crash:") or out.kind in ("ValueError", "TypeError"):
        out.kind = "error"  # a native's own exception, whatever its type
    return out


def run_case(case: Case, arrays: list, backend: Any, *, inject: dict | None = None,
             other: Any = None, move: Callable | None = None) -> Outcome:
    """Run ``case`` on ``backend`` with NumPy ``arrays`` (moved there first); ``move(i, a)``
    may move argument ``i`` elsewhere instead (another framework, another device)."""
    module = importlib.import_module(POLYLOSS_MODULES[case.convention])
    recorder = Recorder(module, inject)

    def call() -> Any:
        xs = []
        for i, a in enumerate(arrays):
            if a is None:
                xs.append(None)
            elif move is not None and move(i) is not None:
                xs.append(move(i)(a))
            else:
                xs.append(backend.asarray(a))
        return case.call(recorder, *xs)

    out = classify(call, backend.to_numpy)
    out.names = recorder.names | recorder.injected | ARGUMENT_ALIASES.get(case.convention, set())
    if inject and not recorder.injected:
        return Outcome("n/a", "no function of the call takes " + ", ".join(inject))
    return out


# torch's functional losses call their prediction ``input`` (PoissonNLLLoss.forward: log_input)
ARGUMENT_ALIASES = {"torch": {"input"}}


def names_an_argument(message: str, names: set[str]) -> bool:
    return any(re.search(rf"(?<![\w]){re.escape(n)}(?![\w])", message) for n in names)


# ---- the rows ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Special:
    """Cases where a row's outcome is deliberately another one, and why."""

    outcome: str
    reason: str
    labels: tuple[str, ...] = ()  # these case labels, or
    convention: str | None = None  # every case of this convention, or
    when: Callable[[Case], bool] | None = None  # every case for which this is true
    backends: tuple[str, ...] = ()  # only on these backends (all when empty)
    eager_only: bool = False  # a value check: not on lazy Dask arrays (values unread)

    def matches(self, case: Case, backend: str) -> bool:
        if self.backends and backend not in self.backends:
            return False
        if self.eager_only and backend in LAZY_BACKENDS:
            return False
        if self.labels:
            return case.label in self.labels
        if self.when is not None and not self.when(case):
            return False
        return self.convention is None or case.convention == self.convention


@dataclass(frozen=True)
class Row:
    key: str
    title: str  # the bad input, as the table says it
    applies: str  # to which losses
    select: Callable[[Case], bool]
    spoil: Callable[[Case, list], list | None] | None
    expect: str  # the outcome on every backend unless ``backends`` says otherwise
    # backend -> outcome, for backends where it differs ("n/a": not applicable there)
    backends: dict[str, str] = field(default_factory=dict)
    specials: tuple[Special, ...] = ()
    # strings of which the error message must contain one (the actual value or shape)
    actual: Callable[[Case, list], tuple[str, ...]] | None = None
    inject: dict | None = None  # keyword arguments injected into the call
    runner: str = "eager"  # "eager", "two_frameworks", "two_devices", "options"
    note: str = ""

    def special(self, case: Case, backend: str) -> Special | None:
        return next((sp for sp in self.specials if sp.matches(case, backend)), None)

    def expected(self, case: Case, backend: str) -> str:
        sp = self.special(case, backend)
        if sp is not None:
            return sp.outcome
        return self.backends.get(backend, self.expect)

    def cases(self) -> list[Case]:
        return _cases(self.select)


def _shape_of(i: int) -> Callable[[Case, list], tuple[str, ...]]:
    return lambda case, a: (str(tuple(a[i].shape)),)


def _dtype_text(case: Case, a: list) -> tuple[str, ...]:
    return (str(a[0].dtype),)


def _not_ctc(c: Case) -> bool:
    return c.domain not in CTC_DOMAINS


def _keras_object(c: Case) -> bool:
    return c.convention == "keras" and c.label[:1].isupper()


_KERAS_CASTS = Special("value", "Keras's loss objects cast both inputs to their `dtype` first, as "
                       "Keras does", when=_keras_object)
_FLATTENED = ("Circle()", "Circle(gamma=16.0, margin=0.25, reduction='sum')(y_true, y_pred, sample_weight=w)",
              "circle(y_true, y_pred, remove_diagonal=False)", "CategoricalGeneralizedCrossEntropy()",
              "categorical_generalized_cross_entropy(y_true, y_pred, q=0.7)")
_LABEL_ROWS = INDEX_DOMAINS + CTC_DOMAINS
_OPTAX_INT = Special("TypeError", "optax requires integer labels (a floating label array is refused "
                     "whatever its values)",
                     labels=("softmax_cross_entropy_with_integer_labels(logits, labels)",))
_FORWARD_PROBS = Special("value", "the second output, the forward log-probabilities, of a sequence "
                         "whose label is unread and out of range is not NaN (its loss is)",
                         labels=("ctc_loss_with_forward_probs(...)[1]",), backends=LAZY_BACKENDS)
_BAD_LABEL_NOTE = ("Class indices are checked where their values can be read: lazy Dask arrays are "
                   "not computed for a check, so there such a position's loss is NaN, as under jit "
                   "(rows `jit_label` and `checks_off_label`).")

ROWS: list[Row] = [
    Row("broadcast", "prediction and target shapes that would broadcast: a target of shape `(..., 1)` "
        "or with one axis more than the prediction", "every loss",
        lambda c: _not_ctc(c) and c.domain != "ranking", broadcast_target, "ValueError",
        actual=_shape_of(1),
        specials=(
            Special("value", "Keras squeezes class-index labels of shape `(N, 1)` to `(N,)`",
                    labels=("SparseCategoricalCrossentropy(from_logits=True, ignore_class=-100)",)),
            Special("value", "Gluon reshapes the label to the prediction's shape without its class "
                    "axis", labels=("SoftmaxCELoss()",)),
            Special("value", "Keras flattens the labels of Circle and of the generalized "
                    "cross-entropy to `(N,)`", labels=_FLATTENED),
        ),
        note="Natives warn (torch), squeeze a trailing 1 and broadcast the rest (Keras), or "
             "broadcast (optax); each mirror applies its framework's own reshaping rule first."),
    Row("extra_class", "a probability, one-hot or multi-hot target with more classes than the "
        "prediction", "losses with such targets",
        lambda c: c.domain in ("class_probs", "prob_pairs", "kl", "binary_logits", "binary_probs",
                               "masks"),
        extra_class, "ValueError", actual=_shape_of(1)),
    Row("label_high", "a class index `>= C`", "class-index targets, CTC labels",
        lambda c: c.domain in _LABEL_ROWS, label_value(lambda c: c), "ValueError",
        backends={"dask": "NaN"}, specials=(_FORWARD_PROBS,),
        actual=lambda c, a: (str(_num_classes(c, a[0])),),
        note=_BAD_LABEL_NOTE),
    Row("label_negative", "a negative class index that is not the ignore value",
        "class-index targets, CTC labels", lambda c: c.domain in _LABEL_ROWS,
        label_value(lambda c: -7), "ValueError", backends={"dask": "NaN"}, specials=(_FORWARD_PROBS,),
        actual=lambda c, a: ("-7",)),
    Row("label_fraction", "a floating-point class index that is not a whole number",
        "class-index targets, CTC labels", lambda c: c.domain in _LABEL_ROWS,
        fractional_label, "ValueError", backends={"dask": "NaN"}, specials=(_OPTAX_INT, _FORWARD_PROBS),
        actual=lambda c, a: ("whole", "float")),
    Row("prob_high", "a probability above 1 where the prediction is a probability",
        "losses on probabilities", lambda c: c.domain in PROBABILITY_CASES, probability(1.5),
        "ValueError", backends={"dask": "unchecked"}, actual=lambda c, a: ("1.5",),
        specials=(
            Special("value", "Keras clips probabilities to [1e-7, 1 - 1e-7] (or uses them as they "
                    "are), as Keras does", convention="keras"),
            Special("NaN", "Gluon's `log(p + 1e-12)` of a value outside [0, 1] is NaN, as in MXNet",
                    convention="gluon"),
        ),
        note="Predictions that must be probabilities are checked with one reduction per call "
             "(NaN passes and propagates). torch's `BCELoss` refuses them as torch does. Lazy Dask "
             "arrays are not checked (the value is used as it is)."),
    Row("prob_negative", "a negative probability where the prediction is a probability",
        "losses on probabilities", lambda c: c.domain in PROBABILITY_CASES, probability(-0.5),
        "ValueError", backends={"dask": "unchecked"}, actual=lambda c, a: ("-0.5",),
        specials=(
            Special("value", "as above (Keras clips)", convention="keras"),
            Special("NaN", "as above (Gluon's log)", convention="gluon"),
        )),
    Row("short_class_weight", "a per-class weight vector of the wrong length",
        "losses with class weights", lambda c: c.weighted and c.weight_kind == "class",
        short_weight, "ValueError", actual=_shape_of(2)),
    Row("short_sample_weight", "per-sample weights of the wrong length", "losses with sample weights",
        lambda c: c.weighted and c.weight_kind == "sample", short_weight, "ValueError",
        actual=_shape_of(2)),
    Row("negative_variance", "a negative variance", "Gaussian NLL",
        lambda c: c.weight_kind == "var", negative_weight_entry, "ValueError",
        backends={"dask": "NaN"}, actual=lambda c, a: ("negative",)),
    Row("negative_rate", "a negative Poisson rate (`log_input=False`)", "Poisson NLL on rates",
        lambda c: c.domain == "rates", negative_rate, "ValueError", backends={"dask": "NaN"},
        actual=lambda c, a: ("negative",),
        specials=(Special("NaN", "the natives take the log of the rate: NaN, as in torch, Keras "
                          "and MXNet", when=lambda c: c.convention != "polyloss"),)),
    Row("nan_pred", "a NaN in the prediction, where it counts", "every loss", lambda c: True,
        nan_pred, "NaN",
        specials=(Special("ValueError", "torch refuses it (`all elements of input should be between "
                          "0 and 1`)", labels=("BCELoss()", "binary_cross_entropy(input, target)"),
                          eager_only=True),),
        note="NaN propagates: no clip, `where` or mask hides a NaN that enters a counted term, in "
             "the canonical losses and the mirrors alike. Deliberate differences: torch's "
             "`MultiMarginLoss` and `MultiLabelMarginLoss` kernels skip a NaN margin (`if (z > 0)`) "
             "and return a number; polyloss returns NaN."),
    Row("nan_target", "a NaN in a floating-point target", "every loss with a floating target",
        lambda c: True, nan_target, "NaN",
        specials=(
            Special("ValueError", "the target holds labels whose values are checked (class indices, "
                    "0/1 masks, multi-hot), or torch refuses it (`BCELoss`)",
                    labels=("polyloss.multilabel_margin(pred, target, margin=0.5, reduction='none')",
                            "polyloss.lovasz_hinge(pred, target, ignore_index=255)",
                            "polyloss.lovasz_hinge(pred, target, pooling='batch', ignore_index=255)",
                            "BCELoss()", "binary_cross_entropy(input, target)",
                            "CTCLoss()(pred, label, pred_lengths)",
                            "CTCLoss(layout='TNC', label_layout='TN')(pred, label)"),
                    eager_only=True),
            Special("value", "the native compares the label with ±1 or 1 and never computes with "
                    "it (torch's `HingeEmbeddingLoss`, optax's `sparsemax_loss`): a NaN label is "
                    "neither class, as there",
                    labels=("HingeEmbeddingLoss(margin=0.5)", "sparsemax_loss(logits, labels)")),
        )),
    Row("int_pred", "an integer prediction", "every loss", _not_ctc, integer_pred, "TypeError",
        specials=(
            Special("NaN", "Keras casts, then normalises the rows: 0/0 where a rounded row sums to "
                    "0, as Keras", labels=("CategoricalFocalCrossentropy(dtype='float64')",)),
            _KERAS_CASTS,
        ), actual=_dtype_text),
    Row("bool_pred", "a boolean prediction", "every loss", _not_ctc, bool_pred, "TypeError",
        specials=(_KERAS_CASTS,), actual=_dtype_text),
    Row("complex_pred", "a complex prediction", "every loss", _not_ctc, complex_pred, "TypeError",
        backends={"mxnet": "n/a"}, actual=lambda c, a: ("complex",)),
    Row("empty", "an empty batch", "every loss", lambda c: True, empty_batch, "documented"),
    Row("two_frameworks", "arrays of two frameworks in one call", "every loss", lambda c: True,
        None, "TypeError", runner="two_frameworks",
        specials=(Special("value", "on tensors of the running Keras backend a Keras loss object is "
                          "Keras's own `Loss.__call__`, which takes NumPy targets, as Keras does",
                          when=_keras_object, backends=("tensorflow",)),)),
    Row("two_devices", "arrays on two devices (torch's `meta` device stands in for a GPU)",
        "every loss", lambda c: True, None, "ValueError", runner="two_devices",
        backends={b: "n/a" for b in BACKEND_COLUMNS if b != "torch"}),
    Row("bad_reduction", "an unknown `reduction`", "every loss with a `reduction` argument",
        lambda c: True, None, "ValueError", inject={"reduction": "avg"},
        actual=lambda c, a: ("avg",)),
    Row("bad_option", "an unknown value of a string option (`normalizer`, `pooling`, `layout`, ...)",
        "every loss with such an option", lambda c: True, None, "ValueError", runner="options",
        actual=lambda c, a: ("bogus",)),
    Row("jit_label", "a class index `>= C` under `torch.compile`, `jax.jit`, `tf.function`",
        "the canonical, torch and optax softmax cross-entropies", lambda c: c.label in COMPILED_CASES,
        label_value(lambda c: c), "NaN", runner="compiled",
        backends={b: "n/a" for b in BACKEND_COLUMNS if b not in ("torch", "jax", "tensorflow")},
        note="Values cannot be read while tracing: the position's loss is NaN (never an "
             "out-of-bounds gather or a clipped class), and so is a mean over it."),
    Row("checks_off_label", "a class index `>= C` inside `with polyloss.value_checks(False):`",
        "class-index targets, CTC labels", lambda c: c.domain in _LABEL_ROWS,
        label_value(lambda c: c), "NaN", runner="checks_off", specials=(
            Special("value", "as under jit: the forward log-probabilities of that sequence are "
                    "not NaN (its loss is)", labels=("ctc_loss_with_forward_probs(...)[1]",)),),
        note="The switch skips every check that reads values (no GPU synchronisation); invalid "
             "values then behave as under jit."),
    Row("checks_off_prob", "a probability above 1 inside `with polyloss.value_checks(False):`",
        "losses on probabilities", lambda c: c.domain in PROBABILITY_CASES, probability(1.5),
        "unchecked", runner="checks_off"),
]

# one softmax cross-entropy per convention for the compiled row (a compile per call is slow)
COMPILED_CASES = ("polyloss.cross_entropy(pred, target)", "CrossEntropyLoss()",
                  "softmax_cross_entropy_with_integer_labels(logits, labels)")


# ---- evaluating a row ------------------------------------------------------------------------------

def valid_inputs(case: Case) -> list:
    return make_inputs(case, None, "float64")


def _other_framework(backend_name: str) -> Any:
    from polyloss.parity.backends import available_backends

    for b in available_backends():
        if b.name != backend_name and b.name != "dask":
            b.setup()
            return b
    return None


def _string_options(case: Case) -> list[str]:
    module = importlib.import_module(POLYLOSS_MODULES[case.convention])
    seen: dict[str, Any] = {}

    class Probe(Recorder):
        def __getattr__(self, attr: str) -> Any:
            obj = getattr(module, attr)
            if callable(obj):
                seen.update(option_defaults(obj))
            return obj

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            case.call(Probe(module), *valid_inputs(case))
    except Exception:
        pass
    return sorted(k for k, v in seen.items()
                  if isinstance(v, str) and k not in ("name", "dtype", "reduction"))


def evaluate(row: Row, case: Case, backend: Any) -> list[tuple[str, Outcome]]:
    """What ``case`` does with ``row``'s bad input on ``backend``: ``(what, outcome)`` pairs
    (one per injected option for ``bad_option``, else one)."""
    if row.expected(case, backend.name) == "n/a":
        return [("", Outcome("n/a"))]
    arrays = valid_inputs(case)
    if row.runner == "options":
        out = []
        for opt in _string_options(case):
            out.append((opt, run_case(case, arrays, backend, inject={opt: "bogus"})))
        return out or [("", Outcome("n/a", "no string option"))]
    if row.runner == "two_frameworks":
        other = _other_framework(backend.name)
        if other is None:
            return [("", Outcome("n/a", "one framework installed"))]
        return [(other.name, run_case(case, arrays, backend,
                                      move=lambda i: other.asarray if i == 1 else None))]
    if row.runner == "two_devices":
        if backend.name != "torch":
            return [("", Outcome("n/a"))]
        import torch

        def to_meta(a: np.ndarray) -> Any:
            return torch.from_numpy(np.ascontiguousarray(a)).to("meta")

        return [("meta", run_case(case, arrays, backend, move=lambda i: to_meta if i == 1 else None))]
    if row.spoil is not None:
        arrays = row.spoil(case, arrays)
        if arrays is None:
            return [("", Outcome("n/a", "no floating target"))]
    if row.runner == "compiled":
        module = importlib.import_module(POLYLOSS_MODULES[case.convention])
        present = [a for a in arrays if a is not None]
        slots = [a is not None for a in arrays]

        def fn(*xs: Any) -> Any:
            it = iter(xs)
            return case.call(module, *[next(it) if s else None for s in slots])

        return [("", classify(lambda: backend.run_compiled(fn, present), np.asarray))]
    if row.runner == "checks_off":
        with polyloss.value_checks(False):
            return [("", run_case(case, arrays, backend))]
    return [("", run_case(case, arrays, backend, inject=row.inject))]


# the empty-batch results that are neither NaN, 0 nor empty, and why
EMPTY_DOCUMENTED = {
    "polyloss.tversky(pred, target, alpha=0.3, beta=0.7, pooling='batch')":
        (1.0, "`pooling='batch'` scores the whole batch once: with nothing in it the Tversky index "
              "is 0/eps = 0, so the loss is 1"),
    "Dice()": (1.0, "Keras's `Dice` pools the whole batch: `1 - 2·0 / (0 + eps)` = 1, what Keras "
                    "gives"),
}
# natives whose empty-batch result is not a result: polyloss gives NaN (a mean of nothing)
EMPTY_NATIVE_BUGS = {
    label: "torch 2.13's kernel returns uninitialised memory for the mean of an empty batch "
           "(values such as 6.9e-310 that change from run to run)"
    for label in ("MultiMarginLoss()", "MultiLabelMarginLoss()")
}
# Known gap: on Dask an empty batch still fails inside Dask for these losses (a maximum over
# empty chunks, a reshape Dask cannot split, a stack of no frames); every other backend is fine
DASK_EMPTY_GAPS = ("multiclass_hinge", "lovasz", "ctc")
_NATIVE_EMPTY: dict = {}
_NUMPY_EMPTY: dict = {}


def _same_result(a: Outcome, b: Outcome) -> bool:
    if a.kind != b.kind:
        return False
    if a.value is None or b.value is None:
        return True
    va, vb = np.asarray(a.value, np.float64), np.asarray(b.value, np.float64)
    if va.shape != vb.shape and va.size == vb.size == 1:  # classic mx.nd scalars are (1,)
        va, vb = va.reshape(()), vb.reshape(())
    return va.shape == vb.shape and bool(np.all((va == vb) | (np.isnan(va) & np.isnan(vb))))


def empty_batch_problem(case: Case, out: Outcome) -> str | None:
    """The empty batch: never an exception from inside a framework; the native's own result
    where the native is installed and gives one; otherwise NaN (a mean of nothing), 0 (a sum,
    or a mean whose empty value is documented as 0) or an empty array."""
    if out.kind.startswith("crash:") or out.kind in ("TypeError", "ValueError"):
        return f"raised {out.kind}: {out.message[:200]}"
    key = case_id(case)
    if key not in _NATIVE_EMPTY:
        _NATIVE_EMPTY[key] = native_outcome(case, empty_batch(case, valid_inputs(case)))
    native = _NATIVE_EMPTY[key]
    if case.label in EMPTY_NATIVE_BUGS:
        return None if out.kind == "NaN" else f"gives {out.kind}, not NaN"
    if native is not None and native.kind != "error":
        if not _same_result(out, native):
            return f"gives {out.kind} {None if out.value is None else out.value.tolist()} but the " \
                   f"native gives {native.kind} {None if native.value is None else native.value.tolist()}"
        return None
    if case.label in EMPTY_DOCUMENTED:
        value = EMPTY_DOCUMENTED[case.label][0]
        return None if out.kind == "value" and np.all(out.value == value) else \
            f"gives {out.kind} {out.value}, not the documented {value}"
    if out.kind == "empty" or out.kind == "NaN" or (out.kind == "value" and not np.any(out.value)):
        return None
    return f"gives {out.kind} {out.value}, not NaN, 0 or an empty array"


def problems(row: Row, case: Case, backend: Any) -> list[str]:
    """Every way ``case`` on ``backend`` departs from ``row``; empty when it conforms."""
    expected = row.expected(case, backend.name)
    found = []
    for what, out in evaluate(row, case, backend):
        where = f"{case_id(case)}{' [' + what + ']' if what else ''} on {backend.name}"
        if out.kind == "n/a" and expected != "n/a":
            continue  # nothing to spoil in this call (no option, no floating target, ...)
        if expected == "documented":
            if backend.name in LAZY_BACKENDS and case.family in DASK_EMPTY_GAPS:
                continue  # listed under the table as a known gap
            problem = empty_batch_problem(case, out)
            if problem is None and backend.name != "numpy":
                key = case_id(case)
                if key not in _NUMPY_EMPTY:
                    from polyloss.parity.backends import get_backend

                    _NUMPY_EMPTY[key] = evaluate(row, case, get_backend("numpy"))[0][1]
                if not _same_result(out, _NUMPY_EMPTY[key]):
                    problem = f"gives {out.kind}, NumPy gives {_NUMPY_EMPTY[key].kind}"
            if problem:
                found.append(f"{where}: empty batch {problem}")
            continue
        if expected == "unchecked" and out.kind in UNCHECKED:
            continue
        if out.kind != expected:
            found.append(f"{where}: expected {expected}, got {out.kind}: {out.message[:300]}")
            continue
        if out.kind in ("ValueError", "TypeError"):
            if not names_an_argument(out.message, out.names):
                found.append(f"{where}: the message names no argument of the call "
                             f"({sorted(out.names)}): {out.message}")
            if row.actual is not None:
                arrays = valid_inputs(case) if row.spoil is None else row.spoil(case, valid_inputs(case))
                wanted = row.actual(case, arrays)
                if not any(w in out.message for w in wanted):
                    found.append(f"{where}: the message does not show the actual value "
                                 f"({' or '.join(wanted)}): {out.message}")
    return found


# Rows that compute every call (no early error) run, on the backends where a first call per
# shape is slow (JAX compiles each operation; Dask builds and computes a graph), on one
# canonical call per loss family; every call runs on the other backends (and in the audit).
SLOW_BACKENDS = ("jax", "dask")
COMPUTING_ROWS = ("nan_pred", "nan_target", "empty", "checks_off_label", "checks_off_prob")
LAZY_COMPUTING_ROWS = ("label_high", "label_negative", "label_fraction", "prob_high",
                       "prob_negative", "negative_variance", "negative_rate")


def one_canonical_per_family(cases: list[Case]) -> list[Case]:
    """The first canonical call of each loss family among ``cases``."""
    seen, out = set(), []
    for c in cases:
        if c.convention == "polyloss" and c.family not in seen:
            seen.add(c.family)
            out.append(c)
    return out


def cases_for(row: Row, backend: str) -> list[Case]:
    cases = row.cases()
    computing = row.key in COMPUTING_ROWS or (backend in LAZY_BACKENDS
                                              and row.key in LAZY_COMPUTING_ROWS)
    if backend not in SLOW_BACKENDS or not computing:
        return cases
    return one_canonical_per_family(cases)


def audit(backends: list, rows: list[Row] | None = None) -> None:
    """Every case of every row on every backend (no subsets), printing each departure."""
    for row in rows or ROWS:
        for b in backends:
            for case in row.cases():
                for p in problems(row, case, b):
                    print(f"[{row.key}] {p}", flush=True)


# ---- the table in docs/reliability.md ------------------------------------------------------------

TABLE_BEGIN = "<!-- bad-input table: generated by `python tests/_bad_input.py --table`; do not edit -->"
TABLE_END = "<!-- end of the bad-input table -->"
_CELL = {"unchecked": "not checked", "documented": "see below", "n/a": "—"}


def _cell(row: Row, backend: str) -> str:
    outcome = row.backends.get(backend, row.expect)
    text = _CELL.get(outcome, outcome)
    if outcome != "n/a" and any(not sp.backends or backend in sp.backends for sp in row.specials):
        text += " *"
    return text


def render_table() -> str:
    """The bad-input table (one row per kind of bad input, one column per backend) and, under
    it, every row's note and deliberate exceptions."""
    head = ["#", "bad input", "applies to", "calls"] + [f"`{b}`" for b in BACKEND_COLUMNS]
    lines = [TABLE_BEGIN, "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for i, row in enumerate(ROWS, 1):
        cells = [str(i), row.title, row.applies, str(len(row.cases()))]
        cells += [_cell(row, b) for b in BACKEND_COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("`*`: some calls deliberately give another result, listed here with the reason.")
    lines.append("")
    for i, row in enumerate(ROWS, 1):
        items = []
        if row.note:
            items.append(row.note)
        for sp in row.specials:
            where = (", ".join(f"`{lab}`" for lab in sp.labels) if sp.labels
                     else f"the `{sp.convention}` mirror" if sp.convention
                     else "Keras's loss objects" if sp.when is _keras_object else "the mirrors")
            on = f" on {', '.join(sp.backends)}" if sp.backends else ""
            items.append(f"{_CELL.get(sp.outcome, sp.outcome)} for {where}{on}: {sp.reason}.")
        if row.key == "empty":
            items.append("Every mirror gives exactly what its native gives for an empty batch (checked "
                         "against the native where it is installed); the canonical losses give NaN for "
                         "a mean over nothing, 0 for a sum or for a mean whose all-ignored value is "
                         "documented as 0 (`if_all_ignored='zero'`), and an empty array for "
                         "`reduction='none'`; every backend gives what NumPy gives.")
            for label, (value, reason) in EMPTY_DOCUMENTED.items():
                items.append(f"{value} for `{label}`: {reason}.")
            for label, reason in EMPTY_NATIVE_BUGS.items():
                items.append(f"NaN for `{label}`, where {reason}.")
            items.append("Known gap: on Dask an empty batch still fails inside Dask for the "
                         f"{', '.join(DASK_EMPTY_GAPS)} families (a maximum over empty chunks, a "
                         "reshape Dask cannot split, a stack of no frames).")
        if items:
            lines.append(f"{i}. **{row.key}**: " + " ".join(items))
    lines += ["", TABLE_END]
    return "\n".join(lines)


def counts() -> dict:
    """Rows, backends and (row, call) pairs of the table."""
    return {"rows": len(ROWS), "backends": len(BACKEND_COLUMNS),
            "row_calls": sum(len(r.cases()) for r in ROWS)}


if __name__ == "__main__":
    from polyloss.parity.backends import available_backends

    if "--table" in sys.argv:
        print(render_table())
        sys.exit(0)
    args = sys.argv[1:]
    chosen = [a for a in args if not a.startswith("-")]
    keys = [a[6:] for a in args if a.startswith("--row=")]
    bs = available_backends(chosen or None)
    for b in bs:
        b.setup()
    audit(bs, [r for r in ROWS if not keys or r.key in keys])

"""``polyloss.torch``'s loss classes as drop-ins for ``torch.nn``'s, inside real training loops.

For every class of ``polyloss.torch.__all__`` (each has a ``torch.nn`` counterpart of the same
name; ``SPECS`` must cover them all, checked below):

- a training loop (``nn.Linear`` model, SGD with momentum or Adam, ``STEPS`` steps, fixed seed)
  run once with the native loss and once with the polyloss one: the parameters after every
  step agree to 1e-12 relative in float64, a few float32 ulps in float32;
- the module side: ``isinstance(nn.Module)``, forward hooks, repr, ``state_dict`` keys and
  buffers equal to the native's, ``load_state_dict`` both ways, ``.to(float64)``/``.double()``
  casting and ``.to('cpu')``/``.to('cuda')`` moving the ``weight``/``pos_weight`` buffers,
  non-torch arrays kept as plain attributes;
- ``torch.compile(fullgraph=True)`` of model + loss (a representative subset, see
  ``COMPILED``), ``torch.autocast('cpu', bfloat16)``, and CUDA (skipped without a GPU).

Every expected number comes from the native ``torch.nn`` run in the same test.
"""

from __future__ import annotations

import inspect
import math
import subprocess
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from _native import require_module

torch = require_module("torch")
nn = torch.nn
F = torch.nn.functional
pt = pytest.importorskip("polyloss.torch")

pytestmark = pytest.mark.native

N, D_IN, C = 6, 4, 3  # batch, model inputs, model outputs (classes)
STEPS = 4
SEED = 20261122


def _np_rng() -> np.random.Generator:
    return np.random.default_rng(SEED)


def _t(a: np.ndarray, dtype: torch.dtype | None = None) -> torch.Tensor:
    """A NumPy array as a torch tensor (inputs are built and cast in NumPy, then moved)."""
    out = torch.from_numpy(np.ascontiguousarray(a))
    return out if dtype is None else out.to(dtype)


# ---- the losses: how each is built, fed and called --------------------------------------------

@dataclass(frozen=True)
class Spec:
    """One loss class in a training loop.

    ``kwargs(dtype)``: constructor arguments (tensors made in ``dtype``); ``d_out``: the model's
    output width; ``data(rng)``: NumPy ``(x, extras)``; ``call(loss, out, extras)``: the loss
    of the model output ``out`` (extras already torch tensors in the run's dtype, integer
    arrays kept integer).
    """

    kwargs: Callable[[torch.dtype], dict[str, Any]]
    data: Callable[[np.random.Generator], tuple[np.ndarray, dict[str, np.ndarray]]]
    call: Callable[[Any, torch.Tensor, dict[str, torch.Tensor]], torch.Tensor]
    d_out: int = C
    buffers: tuple[str, ...] = field(default=())  # torch tensors given to the constructor


def _w(values: tuple[float, ...]) -> Callable[[torch.dtype], torch.Tensor]:
    return lambda dtype: _t(np.asarray(values, dtype=np.float64), dtype)


W3 = (0.5, 2.0, 1.25)  # arbitrary positive class/element weights, exactly representable
POS3 = (3.0, 0.5, 1.5)  # arbitrary pos_weight, exactly representable


def _x(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape if shape else (N, D_IN))


def _regression(rng: np.random.Generator) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    return _x(rng), {"target": 2.0 * rng.standard_normal((N, C))}


def _probabilities(rng: np.random.Generator) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    return _x(rng), {"target": rng.uniform(0.0, 1.0, (N, C))}


def _labels(rng: np.random.Generator) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    # every class present, class 0 twice (it is the ignore_index of the CrossEntropyLoss run)
    return _x(rng), {"target": np.asarray([0, 2, 1, 0, 2, 1], dtype=np.int64)}


def _signs(rng: np.random.Generator, shape: tuple[int, ...] = (N, C)) -> np.ndarray:
    return np.where(rng.uniform(size=shape) < 0.5, -1.0, 1.0)


def _distribution(rng: np.random.Generator) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    q = rng.uniform(0.1, 1.0, (N, C))
    return _x(rng), {"target": q / q.sum(axis=1, keepdims=True)}


def _multilabel(rng: np.random.Generator) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    # class lists padded with -1 (reading stops at the first -1); one sample lists none
    lists = np.asarray([[1, -1, 0], [2, 0, -1], [0, 1, 2], [-1, 2, 1], [1, 2, -1], [2, -1, -1]],
                       dtype=np.int64)
    return _x(rng), {"target": lists}


def _ctc(rng: np.random.Generator) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    t_max, batch = 5, 3  # (T, N, C) log-probabilities over the C model outputs, blank 0
    return _x(rng, t_max, batch, D_IN), {
        "target": np.asarray([[1, 2], [2, 2], [1, 0]], dtype=np.int64),  # row 3: one label, padded
        "input_lengths": np.asarray([5, 5, 3], dtype=np.int64),  # [2, 2] needs 2 + 1 frames
        "target_lengths": np.asarray([2, 2, 1], dtype=np.int64),
    }


def _plain(loss: Any, out: torch.Tensor, e: dict[str, torch.Tensor]) -> torch.Tensor:
    return loss(out, e["target"])


SPECS: dict[str, Spec] = {
    "L1Loss": Spec(lambda d: {}, _regression, _plain),
    "MSELoss": Spec(lambda d: {"reduction": "sum"}, _regression, _plain),
    "HuberLoss": Spec(lambda d: {"delta": 0.75}, _regression, _plain),
    "SmoothL1Loss": Spec(lambda d: {"beta": 0.5}, _regression, _plain),
    "BCELoss": Spec(lambda d: {"weight": _w(W3)(d)}, _probabilities,
                    lambda loss, out, e: loss(torch.sigmoid(out), e["target"]), buffers=("weight",)),
    "BCEWithLogitsLoss": Spec(lambda d: {"weight": _w(W3)(d), "pos_weight": _w(POS3)(d)},
                              _probabilities, _plain, buffers=("weight", "pos_weight")),
    "CrossEntropyLoss": Spec(
        lambda d: {"weight": _w(W3)(d), "ignore_index": 0, "label_smoothing": 0.1}, _labels, _plain,
        buffers=("weight",)),
    "NLLLoss": Spec(lambda d: {"weight": _w(W3)(d)}, _labels,
                    lambda loss, out, e: loss(F.log_softmax(out, dim=1), e["target"]),
                    buffers=("weight",)),
    "KLDivLoss": Spec(lambda d: {"reduction": "batchmean"}, _distribution,
                      lambda loss, out, e: loss(F.log_softmax(out, dim=1), e["target"])),
    "PoissonNLLLoss": Spec(
        lambda d: {"full": True}, lambda rng: (_x(rng), {"target": rng.poisson(2.0, (N, C)) * 1.0}),
        _plain),
    "GaussianNLLLoss": Spec(
        lambda d: {"full": True}, _regression,
        lambda loss, out, e: loss(out[:, :C], e["target"], torch.exp(out[:, C:])), d_out=2 * C),
    "HingeEmbeddingLoss": Spec(lambda d: {"margin": 0.5},
                               lambda rng: (_x(rng), {"target": _signs(rng)}), _plain),
    "MultiLabelMarginLoss": Spec(lambda d: {}, _multilabel, _plain),
    "MultiLabelSoftMarginLoss": Spec(
        lambda d: {"weight": _w(W3)(d)},
        lambda rng: (_x(rng), {"target": (rng.uniform(size=(N, C)) < 0.5) * 1.0}), _plain,
        buffers=("weight",)),
    "MultiMarginLoss": Spec(lambda d: {"p": 2, "margin": 0.75, "weight": _w(W3)(d)}, _labels, _plain,
                            buffers=("weight",)),
    "SoftMarginLoss": Spec(lambda d: {}, lambda rng: (_x(rng), {"target": _signs(rng)}), _plain),
    "MarginRankingLoss": Spec(
        lambda d: {"margin": 0.25}, lambda rng: (_x(rng), {"target": _signs(rng, (N,))}),
        lambda loss, out, e: loss(out[:, 0], out[:, 1], e["target"]), d_out=2),
    "CosineEmbeddingLoss": Spec(
        lambda d: {"margin": 0.1}, lambda rng: (_x(rng), {"target": _signs(rng, (N,))}),
        lambda loss, out, e: loss(out[:, :C], out[:, C:], e["target"]), d_out=2 * C),
    "TripletMarginLoss": Spec(
        lambda d: {"margin": 0.5, "swap": True}, lambda rng: (_x(rng), {}),
        lambda loss, out, e: loss(out[:, :C], out[:, C:2 * C], out[:, 2 * C:]), d_out=3 * C),
    "TripletMarginWithDistanceLoss": Spec(
        lambda d: {"margin": 2.0}, lambda rng: (_x(rng), {}),
        lambda loss, out, e: loss(out[:, :C], out[:, C:2 * C], out[:, 2 * C:]), d_out=3 * C),
    "PairwiseDistance": Spec(  # not a loss: the distance module, trained on its mean
        lambda d: {"p": 1.5, "eps": 1e-3}, lambda rng: (_x(rng), {}),
        lambda dist, out, e: dist(out[:, :C], out[:, C:]).mean(), d_out=2 * C),
    "CTCLoss": Spec(
        lambda d: {"blank": 0}, _ctc,
        lambda loss, out, e: loss(F.log_softmax(out, dim=2), e["target"], e["input_lengths"],
                                  e["target_lengths"])),
    # owns a torch.nn.Linear (classes x model outputs), initialised from the same random stream
    # on both sides; the model's output is its input (the hidden state)
    "LinearCrossEntropyLoss": Spec(
        lambda d: {"in_features": C, "num_classes": C, "bias": True, "dtype": d, "ignore_index": 0,
                   "label_smoothing": 0.1}, _labels, _plain),
}

CLASSES = sorted(n for n in pt.__all__ if isinstance(getattr(pt, n), type))


def test_every_class_has_a_native_counterpart_and_a_spec():
    assert CLASSES == sorted(SPECS), "a polyloss.torch class without a training spec (or a stale spec)"
    for name in CLASSES:
        assert issubclass(getattr(nn, name), nn.Module), name


def _extras(e: dict[str, np.ndarray], dtype: torch.dtype, device: str) -> dict[str, torch.Tensor]:
    return {k: (_t(v) if v.dtype.kind in "iu" else _t(v, dtype)).to(device) for k, v in e.items()}


def _train(module: Any, name: str, dtype: torch.dtype, optimizer: str, device: str = "cpu",
           compile_model: bool = False) -> tuple[list[float], list[np.ndarray]]:
    """``STEPS`` optimizer steps of ``nn.Linear`` + loss ``module.<name>``: losses and parameters."""
    spec = SPECS[name]
    x_np, extras_np = spec.data(_np_rng())
    torch.manual_seed(SEED)
    model = nn.Linear(D_IN, spec.d_out).to(dtype=dtype, device=device)
    loss_fn = getattr(module, name)(**spec.kwargs(dtype)).to(device)
    x = _t(x_np, dtype).to(device)
    extras = _extras(extras_np, dtype, device)

    def step_loss(inputs: torch.Tensor) -> torch.Tensor:
        return spec.call(loss_fn, model(inputs), extras)

    run = torch.compile(step_loss, fullgraph=True, backend="aot_eager") if compile_model else step_loss
    opt = (torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9) if optimizer == "sgd"
           else torch.optim.Adam(model.parameters(), lr=0.05))
    losses, params = [], []
    for _ in range(STEPS):
        opt.zero_grad()
        loss = run(x)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        params.append(np.concatenate([p.detach().cpu().double().numpy().ravel()
                                      for p in model.parameters()]))
    return losses, params


def _close_params(got: list[np.ndarray], expected: list[np.ndarray], dtype: torch.dtype, what: str) -> None:
    """float64: every parameter to 1e-12 relative. float32: within ``4·STEPS`` ulps of the
    largest parameter (each step adds a few float32 roundings of the update, and parameters
    that pass near 0 make an elementwise relative test meaningless there)."""
    for step, (g, e) in enumerate(zip(got, expected, strict=True)):
        if dtype == torch.float64:
            np.testing.assert_allclose(g, e, rtol=1e-12, atol=0, err_msg=f"{what}, step {step + 1}")
        else:
            scale = float(np.max(np.abs(e)))
            tol = 4 * STEPS * float(np.finfo(np.float32).eps) * scale
            np.testing.assert_allclose(g, e, rtol=0, atol=tol, err_msg=f"{what}, step {step + 1}")


# ---- 1. the training loop -----------------------------------------------------------------------

@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name", CLASSES)
def test_training_matches_native(name, dtype, optimizer):
    native_losses, native_params = _train(nn, name, dtype, optimizer)
    losses, params = _train(pt, name, dtype, optimizer)
    rtol = 1e-12 if dtype == torch.float64 else 8 * float(np.finfo(np.float32).eps)
    np.testing.assert_allclose(losses, native_losses, rtol=rtol, atol=0, err_msg=f"{name} losses")
    _close_params(params, native_params, dtype, f"{name} ({optimizer})")
    # the run must have moved the parameters (a loss without gradient would pass trivially)
    assert not np.array_equal(params[0], params[-1]), name


# ---- 2. the nn.Module side ----------------------------------------------------------------------

def _pair(name: str, dtype: torch.dtype = torch.float32) -> tuple[Any, Any]:
    torch.manual_seed(SEED)  # LinearCrossEntropyLoss draws its projection: the same on both sides
    native = getattr(nn, name)(**SPECS[name].kwargs(dtype))
    torch.manual_seed(SEED)
    return native, getattr(pt, name)(**SPECS[name].kwargs(dtype))


@pytest.mark.parametrize("name", CLASSES)
def test_module_structure_equals_native(name):
    native, loss = _pair(name)
    assert isinstance(loss, nn.Module)
    assert repr(loss) == repr(native)
    assert list(loss.state_dict()) == list(native.state_dict())
    assert list(loss._buffers) == list(native._buffers)  # None buffers included
    assert [n for n, _ in loss.named_buffers()] == [n for n, _ in native.named_buffers()]
    # a loss owns no parameters, except LinearCrossEntropyLoss (its projection, equal to torch's)
    assert [n for n, _ in loss.named_parameters()] == [n for n, _ in native.named_parameters()]
    for got, expected in zip(loss.parameters(), native.parameters(), strict=True):
        assert torch.equal(got, expected)
    assert name == "LinearCrossEntropyLoss" or list(loss.parameters()) == []
    assert tuple(n for n, _ in loss.named_buffers()) == SPECS[name].buffers
    for key, value in native.state_dict().items():
        assert torch.equal(loss.state_dict()[key], value), key
    assert loss.training and not loss.eval().training  # train()/eval() as any module


@pytest.mark.parametrize("name", CLASSES)
def test_call_goes_through_module_hooks(name):
    spec = SPECS[name]
    x_np, extras_np = spec.data(_np_rng())
    torch.manual_seed(SEED)
    model = nn.Linear(D_IN, spec.d_out).double()
    loss = getattr(pt, name)(**spec.kwargs(torch.float64))
    extras = _extras(extras_np, torch.float64, "cpu")
    plain = spec.call(loss, model(_t(x_np)), extras)
    seen: list[int] = []
    loss.register_forward_pre_hook(lambda mod, args: seen.append(len(args)))
    loss.register_forward_hook(lambda mod, args, out: 2.0 * out)  # replaces the output
    hooked = spec.call(loss, model(_t(x_np)), extras)
    assert torch.equal(hooked, 2.0 * plain)  # x 2 is exact (also through PairwiseDistance's mean)
    assert seen == [len(inspect.signature(type(loss).forward).parameters) - 1]  # all positional


@pytest.mark.parametrize("name", [n for n in CLASSES if SPECS[n].buffers])
def test_state_dict_loads_both_ways(name):
    native, loss = _pair(name, torch.float64)
    # different values on each side (x 3, exact), so a load that did nothing would be caught
    changed = {k: 3.0 * v for k, v in native.state_dict().items()}
    assert loss.load_state_dict(changed) is not None
    for key, value in changed.items():
        assert torch.equal(getattr(loss, key), value), key
    native.load_state_dict(loss.state_dict())
    for key, value in changed.items():
        assert torch.equal(getattr(native, key), value), key
    with pytest.raises(RuntimeError, match="Unexpected key"):
        getattr(pt, name)().load_state_dict(changed)  # no weight given: no buffer, as torch


@pytest.mark.parametrize("name", [n for n in CLASSES if SPECS[n].buffers])
def test_to_and_double_move_and_cast_buffers_as_native(name):
    for convert in (lambda m: m.to(torch.float64), lambda m: m.double(), lambda m: m.half(),
                    lambda m: m.to("cpu"), lambda m: m.to("meta"), lambda m: m.to("meta", torch.float64)):
        native, loss = _pair(name)
        assert convert(loss) is loss
        convert(native)
        for key in SPECS[name].buffers:
            got, expected = getattr(loss, key), getattr(native, key)
            assert (got.dtype, got.device) == (expected.dtype, expected.device), key
            assert key in loss._buffers


def test_other_arrays_stay_plain_attributes_and_switch():
    w = np.asarray(W3)
    loss = pt.BCEWithLogitsLoss(weight=w, pos_weight=np.asarray(POS3))
    assert list(loss.state_dict()) == [] and loss.weight is w
    assert "weight" not in loss._buffers and "pos_weight" not in loss._buffers
    x, y = _np_rng().standard_normal((N, C)), _np_rng().uniform(size=(N, C))
    expected = nn.BCEWithLogitsLoss(weight=_t(w), pos_weight=_t(np.asarray(POS3)))(_t(x), _t(y))
    got = loss(x, y)
    assert isinstance(got, np.generic | np.ndarray)  # NumPy in, NumPy out (through nn.Module)
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-12, atol=0)
    loss.weight = _t(w)  # a torch tensor becomes a buffer, as in torch.nn
    assert list(loss.state_dict()) == ["weight"] and loss.weight is loss._buffers["weight"]
    loss.weight = w  # and an array of another kind a plain attribute again
    assert list(loss.state_dict()) == [] and loss.weight is w
    loss.weight = None
    assert loss._buffers["weight"] is None and loss.weight is None


def test_without_torch_the_classes_are_plain_objects():
    """In a process where ``import torch`` fails: ``object`` base, NumPy in and out."""
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import numpy as np, polyloss, polyloss.torch as pt\n"
        "assert pt._ModuleBase is object and pt._Loss.__mro__[-1] is object, pt._Loss.__mro__\n"
        "assert not [m for m in ('torch', 'jax', 'tensorflow', 'mxnet') if sys.modules.get(m)]\n"
        "loss = pt.CrossEntropyLoss(weight=np.asarray([0.5, 2.0, 1.25]), label_smoothing=0.1)\n"
        "x = np.asarray([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])\n"
        "print(repr(loss), repr(float(loss(x, np.asarray([1, 2])))), loss.weight.tolist())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    native = nn.CrossEntropyLoss(weight=_t(np.asarray([0.5, 2.0, 1.25])), label_smoothing=0.1)
    expected = native(_t(np.asarray([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])), _t(np.asarray([1, 2])))
    r, value, weight = out.stdout.split(" ", 2)
    assert r == "CrossEntropyLoss()" and weight.strip() == "[0.5, 2.0, 1.25]"
    assert math.isclose(float(value), float(expected), rel_tol=1e-12, abs_tol=0)


# ---- 3. torch.compile(fullgraph=True) -----------------------------------------------------------
# Each compile costs 2-6 s here, so a subset that covers the kinds of code path a loss takes:
# CrossEntropyLoss (class-label gather with the eager label checks skipped under compile,
# ignore_index, label smoothing, a weight buffer), BCEWithLogitsLoss (two buffers), KLDivLoss
# with reduction='mean' (its warning, which Dynamo cannot trace, is skipped while compiling),
# CTCLoss (the alignment recursion over lengths, the most complex graph). The other losses are
# elementwise/p-norm/margin forms of the same operations (all 22 were checked once with
# backend="eager" while writing this file). ``aot_eager`` traces forward and backward as
# inductor does (it only changes the code generation, which test_canonical_compiled covers).

COMPILED = ["CrossEntropyLoss", "BCEWithLogitsLoss", "KLDivLoss", "CTCLoss"]


class _WithLoss(nn.Module):
    """A model that owns its loss as a submodule (so the loss's buffers are module state)."""

    def __init__(self, name: str, dtype: torch.dtype, kwargs: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.spec = SPECS[name]
        torch.manual_seed(SEED)
        self.linear = nn.Linear(D_IN, self.spec.d_out).to(dtype)
        self.loss = getattr(pt, name)(**(self.spec.kwargs(dtype) if kwargs is None else kwargs))

    def forward(self, x: torch.Tensor, extras: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.spec.call(self.loss, self.linear(x), extras)


@pytest.mark.compiled
@pytest.mark.parametrize("name", COMPILED)
def test_compile_fullgraph_trains_as_eager(name):
    spec = SPECS[name]
    x_np, extras_np = spec.data(_np_rng())
    x, extras = _t(x_np), _extras(extras_np, torch.float64, "cpu")
    kwargs = {"reduction": "mean"} if name == "KLDivLoss" else None
    runs = []
    for compiled in (False, True):
        model = _WithLoss(name, torch.float64, kwargs)
        torch._dynamo.reset()  # a fresh compile per test (no recompile-limit carry-over)
        run = torch.compile(model, fullgraph=True, backend="aot_eager") if compiled else model
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        losses = []
        for _ in range(STEPS):
            opt.zero_grad()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # KLDivLoss 'mean' in eager
                loss = run(x, extras)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        runs.append((losses, [p.detach().numpy().copy() for p in model.parameters()]))
    (eager_losses, eager_params), (losses, params) = runs
    np.testing.assert_allclose(losses, eager_losses, rtol=1e-12, atol=0)
    for got, expected in zip(params, eager_params, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0)


# ---- 4. autocast ----------------------------------------------------------------------------------

BF16_EPS = 2.0 ** -7  # bfloat16 has 8 significand bits (7 stored): its machine epsilon
# torch.nn losses written in Python on top of their input's dtype: under autocast they compute
# in bfloat16 (found by running each native on bfloat16 inputs under CPU autocast: these four
# return bfloat16 or round intermediates to it, all the others return float32).
BF16_NATIVES = {"GaussianNLLLoss", "MultiLabelSoftMarginLoss", "TripletMarginWithDistanceLoss",
                "PairwiseDistance"}


def _autocast_step(loss_fn: Any, name: str, scale: float, upcast: bool = False) -> tuple[Any, Any]:
    """Loss and weight gradient of one step of a float32 model under CPU bfloat16 autocast;
    ``upcast``: the loss sees the bfloat16 output cast to float32, outside autocast."""
    spec = SPECS[name]
    x_np, extras_np = spec.data(_np_rng())
    torch.manual_seed(SEED)
    model = nn.Linear(D_IN, spec.d_out)
    extras = _extras(extras_np, torch.float32, "cpu")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(_t(scale * x_np, torch.float32))
        assert out.dtype == torch.bfloat16
        if not upcast:
            loss = spec.call(loss_fn, out, extras)
    if upcast:
        loss = spec.call(loss_fn, out.float(), extras)
    loss.backward()
    return loss.detach(), model.weight.grad


@pytest.mark.parametrize("scale", [1.0, 30.0], ids=["normal", "large-logits"])  # x 30: logits in the tens
@pytest.mark.parametrize("name", CLASSES)
def test_autocast_bfloat16(name, scale):
    """Under ``torch.autocast('cpu', bfloat16)`` the model output is bfloat16. The loss has the
    native's dtype (float32 for the losses torch autocasts to float32) and is finite. Where torch
    computes in float32, it equals the native to float32 ulps. Where torch's Python-level loss
    computes in bfloat16, polyloss computes in float32: it equals the native run in float32 on
    the same bfloat16 outputs, to two bfloat16 roundings (a bfloat16 intermediate of the spec,
    e.g. ``exp(out)``, and the result's)."""
    native_fn, loss_fn = _pair(name)
    native, native_grad = _autocast_step(native_fn, name, scale)
    got, grad = _autocast_step(loss_fn, name, scale)
    assert got.dtype == native.dtype
    assert torch.isfinite(native) and torch.isfinite(got) and bool(torch.isfinite(grad).all())
    if name in BF16_NATIVES:
        expected, expected_grad = _autocast_step(native_fn, name, scale, upcast=True)
        rtol = 2 * BF16_EPS
    elif name == "LinearCrossEntropyLoss":
        # torch rounds the logits to bfloat16 under autocast; polyloss keeps them in float32
        # (difference torch-linear-ce-autocast): torch's run on the float32-cast output
        expected, expected_grad = _autocast_step(native_fn, name, scale, upcast=True)
        rtol = 8 * float(np.finfo(np.float32).eps)
    else:
        expected, expected_grad = native, native_grad
        rtol = 8 * float(np.finfo(np.float32).eps)
    np.testing.assert_allclose(got.double().numpy(), expected.double().numpy(), rtol=rtol, atol=0)
    # the gradient reaches the weights through the bfloat16 linear layer: rounded to bfloat16
    # there (1 ulp of each element), 4 ulps of the largest element allowed
    np.testing.assert_allclose(grad.numpy(), expected_grad.numpy(), rtol=0,
                               atol=4 * BF16_EPS * float(expected_grad.abs().max()))


# ---- 5. devices --------------------------------------------------------------------------------------

def test_results_stay_on_the_input_device_cpu():
    native, loss = _pair("CrossEntropyLoss", torch.float64)
    loss.to("cpu")
    x = _t(_np_rng().standard_normal((N, C)))
    out = loss(x, _t(_labels(_np_rng())[1]["target"]))
    assert out.device == x.device == loss.weight.device


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device in this environment "
                    "(torch.cuda.is_available() is False)")
@pytest.mark.parametrize("name", ["CrossEntropyLoss", "BCEWithLogitsLoss", "CTCLoss", "MSELoss"])
def test_training_on_cuda_matches_native(name):
    native_losses, native_params = _train(nn, name, torch.float64, "adam", device="cuda")
    losses, params = _train(pt, name, torch.float64, "adam", device="cuda")
    np.testing.assert_allclose(losses, native_losses, rtol=1e-12, atol=0)
    _close_params(params, native_params, torch.float64, f"{name} on cuda")
    loss = getattr(pt, name)(**SPECS[name].kwargs(torch.float64)).to("cuda")
    for key in SPECS[name].buffers:
        assert getattr(loss, key).device.type == "cuda"

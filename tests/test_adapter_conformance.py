"""The TensorFlow and MXNet adapters against NumPy, function by function.

Every Array API function (and operator) that polyloss's core, reductions, canonical losses
and mirrors call through ``xp`` is run on each adapter and compared with
``array_api_compat.numpy`` on the same NumPy inputs, across float32/float64 (and integer and
boolean where the function takes them), broadcasting, type promotion (float32 with float64,
integers with floats, Python scalars), ``keepdims``, negative axes and empty arrays. Expected
values are NumPy's; the comparison is exact where NumPy's result is exact (shapes, dtypes,
integer and boolean results, selections) and within a few ulps for transcendental functions.
``tests/test_backends.py`` covers the adapters' gradients and their MXNet-specific repairs.
"""

from __future__ import annotations

import array_api_compat.numpy as npx
import numpy as np
import pytest
from conftest import INSTALLED_NAMES, require

from polyloss.backends import backend_of

ADAPTERS = [n for n in ("tensorflow", "mxnet") if n in INSTALLED_NAMES]
pytestmark = pytest.mark.skipif(not ADAPTERS, reason="neither TensorFlow nor MXNet is installed")

RNG = np.random.default_rng(7)
A = RNG.normal(size=(3, 4))
POS = RNG.uniform(0.1, 3.0, size=(3, 4))
EMPTY = np.zeros((0, 4))


def _case(fn, *args, **kwargs):
    return pytest.param(fn, args, kwargs, id=f"{fn}-" + "-".join(_tag(a) for a in args)
                        + "".join(f"-{k}={v}" for k, v in kwargs.items()))


def _tag(a) -> str:
    if isinstance(a, np.ndarray):
        return f"{a.dtype}{list(a.shape)}".replace(" ", "")
    if isinstance(a, (list, tuple)):
        return "[" + ",".join(_tag(x) for x in a) + "]"
    return repr(a)


def _f32(a):
    return a.astype(np.float32)


UNARY = ["abs", "sign", "sqrt", "exp", "expm1", "log", "log1p", "log2", "floor", "isnan",
         "isfinite"]
CASES = []
for fn in UNARY:
    x = POS if fn in ("sqrt", "log", "log1p", "log2") else A
    CASES += [_case(fn, x), _case(fn, _f32(x)), _case(fn, EMPTY)]
CASES += [_case("abs", np.array([-3, 0, 2])), _case("sign", np.array([-3, 0, 2])),
          _case("isnan", np.array([np.nan, 1.0, np.inf])),
          _case("isfinite", np.array([np.nan, 1.0, -np.inf])),
          _case("logical_not", np.array([True, False]))]
# polyloss promotes its inputs to one dtype before any arithmetic (``_inputs.prepare``), so
# array-array operations see one dtype; Python scalars are weak (they keep the array's dtype)
for fn in ("maximum", "logaddexp"):
    CASES += [_case(fn, A, A[:1]), _case(fn, _f32(A), _f32(A[:, :1])), _case(fn, EMPTY, A[:1])]
CASES += [_case("logaddexp", np.array([-np.inf, 0.0]), np.array([-np.inf, -np.inf]))]
for fn in ("logical_and", "logical_or"):
    bools = A > 0
    CASES += [_case(fn, bools, bools[:1]), _case(fn, bools[:, :1], bools), _case(fn, EMPTY > 0, bools[:1])]
for fn in ("sum", "mean", "max", "min"):
    for axis in (None, 0, -1, (0, -1)):
        for keepdims in (False, True):
            CASES.append(_case(fn, A, axis=axis, keepdims=keepdims))
    CASES += [_case(fn, _f32(A), axis=-1), _case(fn, EMPTY, axis=-1)]
CASES += [_case("sum", EMPTY), _case("sum", EMPTY, axis=0), _case("mean", EMPTY, axis=0),
          _case("sum", np.array([[1, 2], [3, 4]])), _case("sum", np.array([np.inf, np.inf, 1.0]))]
for fn in ("any", "all"):
    for axis in (None, 0, -1):
        CASES += [_case(fn, A > 0, axis=axis), _case(fn, A > 0, axis=axis, keepdims=True)]
    CASES += [_case(fn, EMPTY > 0), _case(fn, EMPTY > 0, axis=-1)]
CASES += [
    _case("where", A > 0, A, -A), _case("where", A > 0, A[:1], A[:, :1]),
    _case("where", A > 0, A, 0.0), _case("where", A > 0, 1.0, A),
    _case("where", EMPTY > 0, EMPTY, 0.0), _case("where", EMPTY > 0, A[:1], A[:1]),
    _case("clip", A, -0.5, 0.5), _case("clip", A, 0.0, None), _case("clip", _f32(A), None, 0.25),
    _case("reshape", A, (4, 3)), _case("reshape", A, (-1,)), _case("reshape", EMPTY, (0, 2, 2)),
    _case("expand_dims", A, axis=0), _case("expand_dims", A, axis=-1),
    _case("expand_dims", EMPTY, axis=-1),
    _case("squeeze", A[:, :1], axis=-1), _case("squeeze", A[:1], axis=0),
    _case("squeeze", EMPTY[:, :1], axis=-1),
    _case("permute_dims", A, (1, 0)), _case("permute_dims", RNG.normal(size=(2, 3, 4)), (2, 0, 1)),
    _case("broadcast_to", A[:1], (3, 4)), _case("broadcast_to", A[:, :1], (2, 3, 4)),
    _case("broadcast_to", np.zeros((1, 4)), (0, 4)),
    _case("concat", [A, A[:1]], axis=0), _case("concat", [A, A[:, :1]], axis=-1),
    _case("concat", [EMPTY, A], axis=0),
    _case("stack", [A, -A], axis=0), _case("stack", [A, -A], axis=-1),
    _case("unstack", A, axis=0), _case("unstack", A, axis=-1),
    _case("take_along_axis", A, np.array([[1], [0], [3]]), axis=-1),
    _case("take_along_axis", A, np.array([[2, 0, 1, 1]]), axis=0),
    _case("take_along_axis", EMPTY, np.zeros((0, 1), dtype=np.int64), axis=-1),
    _case("take", A, np.array([2, 0, 2]), axis=0),  # CTC's backward: frames in reverse
    _case("take", A, np.array([3, 1]), axis=-1),
    _case("take", np.arange(5.0), np.array([4, 3, 2, 1, 0])),
    _case("take", EMPTY, np.zeros((0,), dtype=np.int64), axis=0),
    _case("sort", A, axis=-1), _case("sort", A, axis=0), _case("sort", A, axis=-1, descending=True),
    _case("argsort", np.array([[2.0, 1.0, 2.0, 1.0], [0.0, 0.0, 0.0, 0.0]]), axis=-1, stable=True),
    _case("argsort", np.array([[2.0, 1.0, 2.0, 1.0]]), axis=-1, descending=True, stable=True),
    _case("argsort", A, axis=0, stable=True),
    _case("cumulative_sum", A, axis=-1), _case("cumulative_sum", A, axis=0),
    _case("cumulative_sum", _f32(A), axis=1), _case("cumulative_sum", EMPTY, axis=-1),
    _case("matmul", A, A.T), _case("matmul", _f32(A), _f32(A).T),
    _case("matmul", RNG.normal(size=(2, 3, 4)), A.T),
    _case("astype", A, "float32"), _case("astype", _f32(A), "float64"), _case("astype", A > 0, "float64"),
    _case("astype", np.array([1.7, -1.7, 2.0]), "int64"),
    _case("astype", np.array([3, 4]), "float32"),
    _case("zeros_like", _f32(A)), _case("ones_like", A), _case("full_like", _f32(A), 2.5),
    _case("ones_like", EMPTY),
]
OPERATORS = [("add", A, A[:1]), ("add", _f32(A), 1.0), ("subtract", _f32(A), _f32(A[:, :1])),
             ("multiply", A, 2), ("multiply", np.array([1, 2]), 3), ("divide", A, POS),
             ("divide", _f32(A), 4.0), ("pow", POS, 1.5), ("pow", POS, 2), ("negative", A),
             ("less", A, 0.0), ("greater_equal", A, A[:1]), ("equal", np.array([1, 2, 3]), 2),
             ("not_equal", A, A), ("add", EMPTY, A[:1]), ("multiply", EMPTY, 3.0)]
for op in OPERATORS:
    CASES.append(_case("op:" + op[0], *op[1:]))
CREATION = [("zeros", (2, 3), "float32"), ("ones", (0, 3), "float64"), ("full", (2,), 1.5, "float64"),
            ("arange", 5, None, "int64"), ("arange", 1, 6, "int64"), ("arange", 4, None, "float32")]


def _adapter(name):
    b = require(name)
    return b, backend_of(b.asarray(np.ones(1))).xp


def _move(b, a):
    return b.asarray(a) if isinstance(a, np.ndarray) else (
        [b.asarray(x) for x in a] if isinstance(a, list) else a)


_OPS = {"add": lambda x, y: x + y, "subtract": lambda x, y: x - y, "multiply": lambda x, y: x * y,
        "divide": lambda x, y: x / y, "pow": lambda x, y: x ** y, "negative": lambda x: -x,
        "less": lambda x, y: x < y, "greater_equal": lambda x, y: x >= y,
        "equal": lambda x, y: x == y, "not_equal": lambda x, y: x != y}


def _call(xp, fn, args, kwargs):
    if fn.startswith("op:"):
        return _OPS[fn[3:]](*args)
    if fn == "astype":
        return xp.astype(args[0], getattr(xp, args[1]))
    if fn in ("zeros_like", "ones_like"):
        return getattr(xp, fn)(args[0])
    return getattr(xp, fn)(*args, **kwargs)


# reductions and products: NumPy and the frameworks sum in different orders
_SUMMING = ("sum", "mean", "cumulative_sum", "matmul", "logaddexp")


def _assert_matches(got, want, b, where, scale=0.0):
    if isinstance(want, (tuple, list)):
        assert len(got) == len(want), where
        for g, w in zip(got, want, strict=True):
            _assert_matches(g, w, b, where, scale)
        return
    w = np.asarray(want)
    g = np.asarray(b.to_numpy(got))
    assert g.shape == w.shape, f"{where}: shape {g.shape}, NumPy {w.shape}"
    assert g.dtype == w.dtype, f"{where}: dtype {g.dtype}, NumPy {w.dtype}"
    if w.dtype.kind in "biu":
        np.testing.assert_array_equal(g, w, err_msg=where)
    else:
        eps = float(np.finfo(w.dtype).eps)
        np.testing.assert_allclose(g, w, rtol=4 * eps, atol=4 * eps * scale, equal_nan=True,
                                   err_msg=where)


@pytest.mark.parametrize("name", ADAPTERS)
@pytest.mark.parametrize(("fn", "args", "kwargs"), CASES)
def test_adapter_matches_numpy(name, fn, args, kwargs):
    b, xp = _adapter(name)
    with np.errstate(all="ignore"):
        want = _call(npx, fn, args, kwargs)
    with backend_of(b.asarray(np.ones(1))).scope():
        got = _call(xp, fn, [_move(b, a) for a in args], kwargs)
        # a sum of n terms may differ by a few ulps of the largest partial sum
        scale = float(np.abs(np.asarray(args[0], dtype=np.float64)).sum()) if fn in _SUMMING else 0.0
        _assert_matches(got, want, b, f"{name} {fn}", scale)


@pytest.mark.parametrize("name", ADAPTERS)
@pytest.mark.parametrize("spec", CREATION, ids=[f"{c[0]}{c[1:]}" for c in CREATION])
def test_adapter_creation_matches_numpy(name, spec):
    b, xp = _adapter(name)
    fn, *rest = spec
    dtype = rest[-1]
    with backend_of(b.asarray(np.ones(1))).scope():
        if fn == "arange":
            start, stop = rest[0], rest[1]
            bounds = (start,) if stop is None else (start, stop)
            got = xp.arange(*bounds, dtype=getattr(xp, dtype))
            want = npx.arange(*bounds, dtype=dtype)
        elif fn == "full":
            got = xp.full(rest[0], rest[1], dtype=getattr(xp, dtype))
            want = npx.full(rest[0], rest[1], dtype=dtype)
        else:
            got = getattr(xp, fn)(rest[0], dtype=getattr(xp, dtype))
            want = getattr(npx, fn)(rest[0], dtype=dtype)
        _assert_matches(got, want, b, f"{name} {fn}")


@pytest.mark.parametrize("name", ADAPTERS)
def test_adapter_promotion_and_dtype_queries(name):
    b, xp = _adapter(name)
    f32, f64 = b.asarray(np.ones(2, np.float32)), b.asarray(np.ones(2, np.float64))
    i64, flag = b.asarray(np.ones(2, np.int64)), b.asarray(np.ones(2, bool))
    # NumPy's (and the standard's) promotion of the dtypes polyloss mixes
    assert xp.result_type(f32, f64) == xp.float64
    assert xp.result_type(f32, f32) == xp.float32
    for dtype, kinds in [(xp.float32, ("real floating",)), (xp.float64, ("real floating",)),
                         (xp.int64, ("integral", "signed integer")), (xp.bool, ("bool",))]:
        for kind in ("real floating", "integral", "bool", "signed integer"):
            assert xp.isdtype(dtype, kind) == (kind in kinds), (dtype, kind)
    assert xp.isdtype(xp.int32, ("integral", "bool")) and not xp.isdtype(xp.float16, "integral")
    with backend_of(f32).scope():
        assert np.asarray(b.to_numpy(f32 * 2.5)).dtype == np.float32  # Python scalars are weak
        assert np.asarray(b.to_numpy(xp.astype(i64, xp.float32) + f32)).dtype == np.float32
        assert np.asarray(b.to_numpy(xp.where(flag, f32, 0.0))).dtype == np.float32

"""The seed documents' losses, parameters and worked numbers (../shared/seeds/001 and 003), not
already covered elsewhere (seed 000: tests/test_canonical_values.py and
test_canonical_classification.py; 002: test_canonical_values.py; 003's L2Loss, SoftmaxCELoss and
KLDivLoss examples: test_mirror_gluon*.py).

Every expected number is computed here from the seed's own formula, by hand or with ``math`` in
float64 (said at each use), and where MXNet is installed the Gluon calls are also run on the real
Gluon. Tolerances: float64 1e-12 relative, float32 ``_native.rtol_for``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from _native import require_module, rtol_for
from conftest import INSTALLED

import polyloss
import polyloss.gluon
import polyloss.torch

DTYPES = ("float32", "float64")
_PARAMS = [pytest.param(b, dt, id=f"{b.name}-{dt}") for b in INSTALLED for dt in DTYPES if dt in b.dtypes]


def _check(actual, expected, dtype, n=1, atol=0.0):
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64),
                               rtol=rtol_for(dtype, n), atol=atol)


# ---- seed 001 -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("backend", "dtype"), _PARAMS)
def test_seed001_dice_coefficient_and_iou_of_two_masks(backend, dtype):
    # The seed's dice_coef(gt, pred) = 2·Σ(p·g)/(Σp + Σg) and iou = Σ(p·g)/(Σp + Σg - Σ(p·g)),
    # dice_loss = 1 - dice_coef. By hand for gt = [1, 1, 0, 0], pred = [1, 0, 1, 0]:
    # intersection 1, sums 2 + 2: Dice 2/4 = 0.5 (loss 0.5), IoU 1/3 (loss 2/3). A second sample,
    # gt = [1, 1, 1, 0], pred = [1, 1, 0, 0]: Dice 4/5, IoU 2/3. No smoothing, no eps (the seed's).
    gt = np.array([[1.0, 1, 0, 0], [1, 1, 1, 0]], dtype=dtype)
    pred = np.array([[1.0, 0, 1, 0], [1, 1, 0, 0]], dtype=dtype)
    p, g = backend.asarray(pred), backend.asarray(gt)
    dice = backend.to_numpy(polyloss.dice(p, g, eps=0.0, reduction="none"))
    iou = backend.to_numpy(polyloss.jaccard(p, g, eps=0.0, reduction="none"))
    _check(1.0 - dice, [0.5, 0.8], dtype)
    _check(1.0 - iou, [1 / 3, 2 / 3], dtype)
    assert [round(float(v), 3) for v in 1.0 - iou] == [0.333, 0.667]  # the seed rounds to 3 places
    # its np.mean over a batch: the mean of the per-sample losses
    _check(backend.to_numpy(polyloss.dice(p, g, eps=0.0)), (0.5 + 0.2) / 2, dtype)


def test_seed001_dice_keras_mirror():
    # Keras's Dice (the mirror) pools everything and adds 1e-7 to the denominator: by hand for the
    # first pair above, 1 - 2·1/(4 + 1e-7)
    require_module("keras")
    import polyloss.keras

    got = polyloss.keras.Dice()(np.array([[1.0, 1, 0, 0]]), np.array([[1.0, 0, 1, 0]]))
    _check(got, 1 - 2 / (4 + 1e-7), "float32")


@pytest.mark.parametrize(("backend", "dtype"), _PARAMS)
def test_seed001_cross_entropy_table(backend, dtype):
    # The seed's table: the true class has probability 0.57, 0.58, 0.52 -> -log p = 0.56, 0.54, 0.65
    # (printed to 2 places; math.log gives 0.5621, 0.5447, 0.6539). The other two probabilities of
    # each row are not in the seed (any that sum to 1 give the same loss).
    probs = np.array([[0.57, 0.23, 0.20], [0.22, 0.58, 0.20], [0.18, 0.30, 0.52]], dtype=dtype)
    onehot = np.eye(3, dtype=dtype)
    expected = [-math.log(float(probs[i, i])) for i in range(3)]
    got = backend.to_numpy(polyloss.cross_entropy(backend.asarray(probs), backend.asarray(onehot),
                                                  from_logits=False, reduction="none"))
    _check(got, expected, dtype, 3)
    assert [round(float(v), 2) for v in got] == [0.56, 0.54, 0.65]
    labels = backend.asarray(np.arange(3))
    got = backend.to_numpy(polyloss.nll(backend.asarray(np.log(probs.astype(np.float64)).astype(dtype)),
                                        labels, reduction="none"))
    _check(got, expected, dtype, 3)


@pytest.mark.parametrize(("backend", "dtype"), _PARAMS)
def test_seed001_cross_entropy_is_not_symmetric(backend, dtype):
    # The seed's calculate_cross_entropy = -Σ y·log p: y = p = 0.2 gives "0.3218..." and y = p = 0.8
    # gives "0.178514" (by math: -0.2·ln 0.2 = 0.32188758, -0.8·ln 0.8 = 0.17851484)
    p = np.array([[0.2], [0.8]], dtype=dtype)
    got = backend.to_numpy(polyloss.cross_entropy(backend.asarray(p), backend.asarray(p), from_logits=False,
                                                  reduction="none"))
    _check(got, [-0.2 * math.log(float(p[0, 0])), -0.8 * math.log(float(p[1, 0]))], dtype)
    assert str(float(got[0])).startswith("0.3218") and str(float(got[1])).startswith("0.178514")


def test_seed001_focal_parameters():
    # The seed's focal_loss(y_true, y_pred, alpha=0.25, gamma=2.0) on one probability: by hand,
    # alpha_t·(1 - p_t)^γ·(-log p_t): y = 1, p = 0.9 -> 0.25·0.01·(-ln 0.9); y = 0, p = 0.9 ->
    # 0.75·0.81·(-ln 0.1)
    p = np.array([0.9, 0.9])
    y = np.array([1.0, 0.0])
    got = polyloss.focal(p, y, from_logits=False, alpha=0.25, gamma=2.0, reduction="none")
    _check(got, [0.25 * 0.01 * -math.log(0.9), 0.75 * 0.81 * -math.log(0.1)], "float64")


# ---- seed 003 (the Gluon notebook) -----------------------------------------------------------------

def _gluon(name, *args, **kw):
    """The real Gluon loss on mx.nd arrays of ``args`` (float64 NumPy), as NumPy."""
    mx = require_module("mxnet")
    from mxnet.gluon import loss as gloss

    return getattr(gloss, name)(**kw)(*[mx.nd.array(a, dtype=a.dtype) for a in args]).asnumpy()


@pytest.mark.parametrize("dtype", DTYPES)
def test_seed003_cosine_embedding(dtype):
    # x = y = [1, 0, 1, 0, 1, 0], label 1: 1 - cos = 0; y = [0, 1, 0, 1, 0, 1], label -1: cos = 0 -> 0.
    # 1 - cos is 0 up to the rounding of cos = 3/(√3·√3) (one ulp of 1, as Gluon itself computes it)
    x = np.array([[1.0, 0, 1, 0, 1, 0]], dtype=dtype)
    y = np.array([[0.0, 1, 0, 1, 0, 1]], dtype=dtype)
    same, opposite = np.ones(1, dtype=dtype), -np.ones(1, dtype=dtype)
    ulp = float(np.finfo(dtype).eps)
    for got in (polyloss.gluon.CosineEmbeddingLoss()(x, x, same), polyloss.cosine_embedding(x, x, same)):
        assert abs(float(np.asarray(got).reshape(-1)[0])) <= ulp
    # torch adds 1e-12 (a float32 constant) to each squared norm: 1 - 3/(3 + 1e-12) = 3.3e-13 in
    # float64 (by math), 0 in float32, where 3 + 1e-12 rounds to 3
    e = float(np.float32(1e-12))
    got = float(polyloss.torch.CosineEmbeddingLoss()(*[_t(a) for a in (x, x, same)]))
    expected = 1 - 3 / math.sqrt((3 + e) * (3 + e)) if dtype == "float64" else 0.0
    assert abs(got - expected) <= ulp
    for got in (polyloss.gluon.CosineEmbeddingLoss()(x, y, opposite),
                polyloss.torch.CosineEmbeddingLoss()(*[_t(a) for a in (x, y, opposite)]),
                polyloss.cosine_embedding(x, y, opposite)):
        assert float(np.asarray(got).reshape(-1)[0]) == 0.0
    if dtype == "float32" and "mxnet" in [b.name for b in INSTALLED]:
        np.testing.assert_array_equal(polyloss.gluon.CosineEmbeddingLoss()(x, x, same),
                                      _gluon("CosineEmbeddingLoss", x, x, same))
        np.testing.assert_array_equal(polyloss.gluon.CosineEmbeddingLoss()(x, y, opposite),
                                      _gluon("CosineEmbeddingLoss", x, y, opposite))


def _t(a):
    torch = require_module("torch")
    return torch.tensor(a)


_GRID = np.arange(-5, 5, 0.1)  # the notebook's nd.arange(-5, 5, .1)


@pytest.mark.parametrize("dtype", DTYPES)
def test_seed003_classification_losses_on_the_notebooks_grid(dtype):
    # show_classification_loss: x = arange(-5, 5, .1), label 1. By the notebook's formulas, with
    # math in float64 on the same (cast) x: HingeLoss max(0, 1 - x), LogisticLoss log(1 + exp(-x)),
    # SigmoidBinaryCrossEntropyLoss -log σ(x) (the same values).
    x = _GRID.astype(dtype)
    ones = np.ones_like(x)
    xs = [float(v) for v in x]
    hinge = [max(0.0, 1.0 - v) for v in xs]
    logistic = [math.log1p(math.exp(-v)) for v in xs]
    _check(polyloss.gluon.HingeLoss()(x, ones), hinge, dtype)
    _check(polyloss.hinge(x, ones, reduction="none"), hinge, dtype)
    _check(polyloss.gluon.LogisticLoss()(x, ones), logistic, dtype)
    _check(polyloss.soft_margin(x, ones, reduction="none"), logistic, dtype)
    _check(polyloss.gluon.SigmoidBinaryCrossEntropyLoss()(x, ones), logistic, dtype)
    _check(polyloss.binary_cross_entropy(x, ones, from_logits=True, reduction="none"), logistic, dtype)
    # the real Gluon in float64 (in float32 its LogisticLoss/SigmoidBCE kernels are a few ulps of
    # their terms off where the loss is small: 2.4e-7 absolute, measured)
    if "mxnet" in [b.name for b in INSTALLED] and dtype == "float64":
        for name in ("HingeLoss", "LogisticLoss", "SigmoidBinaryCrossEntropyLoss"):
            _check(getattr(polyloss.gluon, name)()(x, ones), _gluon(name, x, ones), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_seed003_regression_losses_on_the_notebooks_grid(dtype):
    # show_regression_loss: label 0. L1 |x|, L2 x²/2, HuberLoss(rho=1) x²/2 for |x| < 1 else |x| - 1/2
    x = _GRID.astype(dtype)
    zeros = np.zeros_like(x)
    xs = [float(v) for v in x]
    l1 = [abs(v) for v in xs]
    l2 = [0.5 * v * v for v in xs]
    huber = [0.5 * v * v if abs(v) < 1 else abs(v) - 0.5 for v in xs]
    _check(polyloss.gluon.L1Loss()(x, zeros), l1, dtype)
    _check(polyloss.mae(x, zeros, reduction="none"), l1, dtype)
    _check(polyloss.gluon.L2Loss()(x, zeros), l2, dtype)
    _check(0.5 * np.asarray(polyloss.mse(x, zeros, reduction="none")), l2, dtype)
    _check(polyloss.gluon.HuberLoss(rho=1)(x, zeros), huber, dtype)
    _check(polyloss.huber(x, zeros, delta=1.0, reduction="none"), huber, dtype)


def test_seed003_l2_basic_usage():
    # loss(nd.ones((2,)), nd.ones((2,)) * 2) = .5 * (x - y)**2 = [0.5, 0.5] (by hand)
    got = polyloss.gluon.L2Loss()(np.ones(2, np.float32), 2 * np.ones(2, np.float32))
    np.testing.assert_array_equal(got, np.array([0.5, 0.5], np.float32))


@pytest.mark.parametrize("dtype", DTYPES)
def test_seed003_triplet(dtype):
    # L = max(‖pos - pred‖² - ‖neg - pred‖² + margin, 0): by hand for pred = [0, 0], pos = [1, 0]:
    # neg = [0, 1.5] -> 1 - 2.25 + 1 < 0 -> 0; neg = [0, 1.25] -> 1 - 1.5625 + 1 = 0.4375 (dyadic:
    # exact in float32). polyloss.triplet_margin(squared=True) is the same loss.
    anchor = np.zeros((2, 2), dtype)
    pos = np.array([[1.0, 0], [1, 0]], dtype)
    neg = np.array([[0.0, 1.5], [0, 1.25]], dtype)
    for got in (polyloss.gluon.TripletLoss()(anchor, pos, neg),
                polyloss.triplet_margin(anchor, pos, neg, squared=True, reduction="none")):
        np.testing.assert_array_equal(np.asarray(got), np.array([0.0, 0.4375], dtype))
    if "mxnet" in [b.name for b in INSTALLED]:
        np.testing.assert_array_equal(_gluon("TripletLoss", anchor, pos, neg), [0.0, 0.4375])


def test_seed003_softmax_cross_entropy_canonical():
    # loss(nd.array([[1, 10], [8, 2]]), nd.array([0, 1])): by hand, logsumexp - logit of the label:
    # 10 + log(1 + e^-9) - 1 and 8 + log(1 + e^-6) - 2
    x = np.array([[1.0, 10.0], [8.0, 2.0]])
    got = polyloss.cross_entropy(x, np.array([0, 1]), reduction="none")
    _check(got, [9 + math.log1p(math.exp(-9)), 6 + math.log1p(math.exp(-6))], "float64")


def test_seed003_poisson_formula():
    # L = pred - target·log(pred) + log(target!): by math for pred = 2, target = 3:
    # 2 - 3 ln 2 + ln 6. polyloss.poisson_nll(log_input=False) is the first two terms (log(target!)
    # does not depend on pred; Gluon's compute_full and polyloss's full=True use Stirling's form)
    pred, target = np.array([2.0]), np.array([3.0])
    got = float(polyloss.poisson_nll(pred, target, log_input=False, eps=0.0)) + math.lgamma(4.0)
    assert math.isclose(got, 2 - 3 * math.log(2) + math.log(6), rel_tol=1e-15)

"""Device placement without a GPU: torch's ``meta`` device (shapes only, no values) stands in
for an accelerator. Every array a loss creates (class ids, positions, masks, constants) must be
created on its input's device, or torch refuses to mix it with a ``meta`` tensor, exactly as it
would with a CUDA tensor; and values cannot be read there, so eager checks must step aside as
under ``torch.compile``. Mixing devices in one call is a clear error naming both arguments.
On a CUDA machine the same calls run on ``cuda`` too (skipped here with the reason)."""

from __future__ import annotations

import pytest
from _native import natives

import polyloss

(torch,) = natives("torch")
pytestmark = pytest.mark.skipif(torch is None, reason="torch is not installed in this environment")


def _calls():
    import polyloss.keras as pk
    import polyloss.optax as po
    import polyloss.torch as pt

    def t(*shape, dtype=None, high=None, device):
        if high is not None:
            return torch.randint(0, high, shape, device=device)
        return torch.rand(*shape, dtype=dtype or torch.float32, device=device)

    return {
        "mse": lambda d: polyloss.mse(t(4, 5, device=d), t(4, 5, device=d)),
        "cross_entropy": lambda d: polyloss.cross_entropy(t(4, 5, device=d), t(4, high=5, device=d),
                                                          label_smoothing=0.1),
        "focal": lambda d: polyloss.focal(t(4, 5, device=d), t(4, high=5, device=d), kind="categorical"),
        "multi_margin": lambda d: polyloss.multi_margin(t(4, 5, device=d), t(4, high=5, device=d)),
        "multilabel_margin": lambda d: polyloss.multilabel_margin(
            t(4, 5, device=d), t(4, 5, high=5, device=d), target_format="indices"),
        "dice": lambda d: polyloss.dice(t(2, 3, 4, 4, device=d), t(2, 3, 4, 4, device=d)),
        "lovasz_softmax": lambda d: polyloss.lovasz_softmax(t(2, 3, 4, 4, device=d),
                                                            t(2, 4, 4, high=3, device=d)),
        "ntxent": lambda d: polyloss.ntxent(t(4, 5, device=d), t(4, high=2, device=d)),
        "ctc": lambda d: polyloss.ctc(t(2, 6, 5, device=d), t(2, 3, high=4, device=d) + 1),
        "torch.CrossEntropyLoss": lambda d: pt.CrossEntropyLoss(label_smoothing=0.1)(
            t(4, 5, device=d), t(4, high=5, device=d)),
        "torch.MultiMarginLoss": lambda d: pt.MultiMarginLoss()(t(4, 5, device=d), t(4, high=5, device=d)),
        "torch.CTCLoss": lambda d: pt.CTCLoss()(t(6, 2, 5, device=d).log_softmax(-1),
                                                t(2, 3, high=4, device=d) + 1, (6, 6), (3, 3)),
        "keras.sparse_categorical_crossentropy": lambda d: pk.sparse_categorical_crossentropy(
            t(4, high=5, device=d), t(4, 5, device=d), from_logits=True),
        "optax.softmax_cross_entropy_with_integer_labels": lambda d:
            po.softmax_cross_entropy_with_integer_labels(t(4, 5, device=d), t(4, high=5, device=d)),
        "optax.multiclass_hinge_loss": lambda d: po.multiclass_hinge_loss(t(4, 5, device=d),
                                                                          t(4, high=5, device=d)),
    }


CALLS = sorted(_calls()) if torch is not None else []
CUDA = torch is not None and torch.cuda.is_available()


@pytest.mark.parametrize("name", CALLS)
@pytest.mark.parametrize("device", ["meta", pytest.param("cuda", marks=pytest.mark.skipif(
    not CUDA, reason="torch.cuda.is_available() is False: no GPU on this machine"))])
def test_result_stays_on_the_input_device(name, device):
    out = _calls()[name](device)
    assert out.device.type == device


def test_two_devices_in_one_call_name_both_arguments():
    with pytest.raises(ValueError, match="pred.*target|target.*pred"):
        polyloss.mse(torch.ones(3), torch.ones(3, device="meta"))

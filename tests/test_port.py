"""``polyloss port``: every mirrored loss ports to every other convention, every generated
snippet is valid Python, and ``--check`` finds every pair the table marks exact (or exact
away from edge inputs) within tolerance of the source's real native loss, on the natives
installed here (the full environment has them all; the modern one has no TensorFlow/Keras or
MXNet, whose pairs are reported as not run, while the mirrors still run). docs/porting.md
equals what the table generates, and bad spellings give clear errors.

Every expected value comes from a real framework: the reference of each check is the
source's native loss, run on its own framework's arrays.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from polyloss import cli
from polyloss.porting import check as checking
from polyloss.porting.check import available, check
from polyloss.porting.core import TARGETS, port
from polyloss.porting.docs import markdown
from polyloss.porting.model import STATUSES, Native
from polyloss.porting.spelling import SpellingError, loss_names, parse
from polyloss.porting.table import concept_of, concepts, example_spelling

MIRRORS = ("torch", "keras", "gluon", "optax")
ALL_NAMES = [(conv, name) for conv in MIRRORS + ("polyloss",) for name in loss_names(conv)]
DOCS = Path(__file__).resolve().parent.parent / "docs" / "porting.md"


def _others(conv: str) -> list[str]:
    return [t for t in MIRRORS if t != conv]


def _assert_checked(result, text: str) -> None:
    """Every pair that ran agrees where the table says exact; pairs that could not run say why
    (a framework missing here, a native that runs in float32 only)."""
    assert result.comparisons, f"{text}: nothing was compared ({result.note})"
    problems = [c for c in result.comparisons if c.failed]
    assert not problems, f"{text} vs {result.reference}: " + "; ".join(
        f"{c.target} {c.what}: {c.error} > {c.tol} {c.note}" for c in problems)
    for c in result.comparisons:
        if not c.ran:
            assert c.note.startswith("not run: "), f"{text}: {c.target} {c.what}: {c.note}"
            reason = available(c.target)
            assert reason is not None or "float32 only" in c.note or "not installed" in c.note, (
                f"{text}: {c.target} {c.what} did not run although its framework is here: {c.note}")


def test_every_mirrored_loss_is_in_the_table():
    # enumerated from the mirror modules: a new mirror without a port entry fails here
    missing = [(conv, name) for conv, name in ALL_NAMES if concept_of(conv, name) is None]
    assert not missing, f"losses without a porting-table row: {missing}"
    assert {len(loss_names(conv)) > 10 for conv in MIRRORS} == {True}


@pytest.mark.parametrize(("conv", "name"), ALL_NAMES, ids=[f"{c}.{n}" for c, n in ALL_NAMES])
def test_ports_to_every_convention_and_checks(conv, name):
    text = example_spelling(conv, name)
    p = port(text, [t for t in TARGETS if t != conv])
    assert set(p.targets) == set(TARGETS) - {conv}
    for t in list(p.targets.values()) + [p.canonical]:
        assert t.status in STATUSES
        if t.status == "none":
            assert t.differences and all(len(r) > 20 for r in t.differences), (text, t.convention)
        else:
            ast.parse("\n".join(t.code))
            assert t.code[-1].startswith("loss = ") or any(ln.startswith("loss = ") for ln in t.code)
            if t.status in ("edges", "approximate"):
                assert t.differences, f"{text} -> {t.convention}: {t.status} without the difference"
        ast.parse("\n".join(t.mirror))
        assert t.mirror[-1] == f"loss = {p.call.mirror()}"
    json.dumps(p.as_dict())
    # check against the real natives (the mirrors on NumPy here: tests/test_mirror_* run them on
    # every array type, and test_check_runs_mirrors_on_target_arrays does it through port)
    result = check(p, mirrors_on="numpy")
    if (conv, name) in NOT_CHECKED:
        assert result.note.startswith(f"not run: {NOT_CHECKED[conv, name]}"), result.note
    else:
        _assert_checked(result, text)


# losses --check cannot run, and why
NOT_CHECKED = {("optax", "make_fenchel_young_loss"): "max_fun is code",
               ("torch", "LinearCrossEntropyLoss"): "the layer draws its own weights"}


# Spellings with arguments: reductions, weights, ignored labels, smoothing, label formats,
# margins, layouts. Each is checked like the defaults above.
SPELLINGS = [
    "torch.nn.CrossEntropyLoss(label_smoothing=0.1, ignore_index=-100)",
    "nn.CrossEntropyLoss(weight=w, ignore_index=-100)",
    "nn.CrossEntropyLoss(weight=w, label_smoothing=0.2, reduction='sum')",
    "F.nll_loss(lp, y, weight=w, ignore_index=3, reduction='none')",
    "keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-1)",
    "keras.losses.SparseCategoricalCrossentropy(ignore_class=2, reduction='mean_with_sample_weight')"
    "(y, p, sw)",
    "keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1, reduction='sum')",
    "gluon.loss.SoftmaxCELoss(sparse_label=False, weight=2.0)",
    "gluon.loss.SoftmaxCELoss(from_logits=True)(lp, y, sw)",
    "polyloss.cross_entropy(x, y, class_weight=w, ignore_index=0, label_smoothing=0.1, "
    "normalizer='sum_of_weights')",
    "F.mse_loss(a, b, weight=w)",
    "keras.losses.MeanSquaredError()(t, p, sample_weight=sw)",
    "gluon.loss.L2Loss()(p, l, sw)",
    "optax.losses.l2_loss(e)",
    "nn.SmoothL1Loss(beta=0.5, reduction='sum')",
    "nn.SmoothL1Loss(beta=0.0)",
    "gluon.loss.HuberLoss(rho=2.5)",
    "keras.losses.Huber(delta=2.0, reduction='none')",
    "nn.BCEWithLogitsLoss(pos_weight=pw, weight=w)",
    "keras.losses.BinaryCrossentropy(label_smoothing=0.2)",
    "gluon.loss.SigmoidBCELoss()(x, y, None, pw)",
    "gluon.loss.LogisticLoss(label_format='binary')",
    "nn.MultiLabelSoftMarginLoss(weight=w, reduction='sum')",
    "keras.losses.BinaryFocalCrossentropy(apply_class_balancing=True, from_logits=True, gamma=1.5)",
    "torch.nn.KLDivLoss(reduction='batchmean', log_target=True)",
    "gluon.loss.KLDivLoss(from_logits=False)",
    "nn.PoissonNLLLoss(log_input=False, full=True, reduction='sum')",
    "gluon.loss.HingeLoss(margin=2.0)",
    "nn.MarginRankingLoss(margin=0.5, reduction='sum')",
    "polyloss.hinge(p, y, label_format='binary', margin=0.5)",
    "polyloss.categorical_hinge(s, y, margin=2.0)",
    "nn.MultiMarginLoss(p=2, margin=0.5, weight=w)",
    "nn.TripletMarginLoss(margin=0.5, swap=True)",
    "optax.losses.triplet_margin_loss(a, p, n, eps=0.0)",
    "gluon.loss.TripletLoss(margin=0.3)",
    "nn.CTCLoss(blank=2, reduction='sum', zero_infinity=True)",
    "gluon.loss.CTCLoss(layout='TNC', label_layout='TN')",
    "optax.losses.ctc_loss(logits, logit_paddings, labels, label_paddings, blank_id=4)",
]


@pytest.mark.parametrize("text", SPELLINGS)
def test_spellings_with_arguments_check(text):
    p = port(text)
    _assert_checked(check(p, mirrors_on="numpy"), text)


# natives that run in float32 only (MXNet's CTC and cosine embedding kernels, SDML) and a
# float32 Keras loss object: their pairs are checked here at float32's tolerance
FLOAT32 = ["torch.nn.CTCLoss()", "gluon.loss.CTCLoss()", "torch.nn.CosineEmbeddingLoss()",
           "gluon.loss.SDMLLoss()", "keras.losses.CategoricalCrossentropy(from_logits=True)"]


@pytest.mark.parametrize("text", FLOAT32)
def test_float32_pairs_check(text):
    result = check(port(text), "float32", mirrors_on="numpy")
    _assert_checked(result, text)
    source = text.split(".")[0]
    if available(source) is None:
        assert not result.note, result.note  # the reference is the source's own native
    if text.startswith("torch") and available("gluon") is None:
        assert any(c.target == "gluon" and c.what == "native" and c.agrees for c in result.comparisons)


def test_check_runs_mirrors_on_target_arrays():
    p = port("torch.nn.CrossEntropyLoss(label_smoothing=0.1, ignore_index=-100)")
    result = check(p)
    _assert_checked(result, "CrossEntropyLoss")
    mirrors = [c for c in result.comparisons if c.what == "mirror"]
    assert {c.target for c in mirrors} == set(_others("torch"))
    for c in mirrors:
        if available(c.target) is None:
            assert c.ran and c.runs_on != "NumPy" and c.agrees, c
        else:
            assert c.ran and c.runs_on == "NumPy", c  # the mirror still runs without the framework


def test_check_fails_on_a_wrong_port(monkeypatch):
    # a deliberately wrong optax port (1% too large) is caught, and the command exits 1
    concept = concept_of("torch", "MSELoss")
    right = concept.render["optax"]

    def wrong(spec):
        native = right(spec)
        return Native(native.status, native.code + ["loss = loss * 1.01"])

    monkeypatch.setitem(concept.render, "optax", wrong)
    result = check(port("torch.nn.MSELoss()", ["optax"]), mirrors_on="numpy")
    if available("optax") is not None:
        pytest.skip("optax is not installed")
    bad = [c for c in result.comparisons if c.failed]
    assert [(c.target, c.what) for c in bad] == [("optax", "native")]
    assert bad[0].error == pytest.approx(0.01, rel=1e-9)
    assert cli.main(["port", "torch.nn.MSELoss()", "--to", "optax", "--check"]) == 1


def test_flagship_port_text_json_and_exit_status(capsys):
    text = "torch.nn.CrossEntropyLoss(label_smoothing=0.1, ignore_index=-100)"
    assert cli.main(["port", text, "--to", "keras,gluon,optax"]) == 0
    out = capsys.readouterr().out
    assert "keras (Keras 3.15): exact" in out
    assert "optax.smooth_labels(labels, 0.1)" in out
    assert "polyloss.torch.CrossEntropyLoss(ignore_index=-100, label_smoothing=0.1)(input, target)" in out
    assert "polyloss.cross_entropy(input, target, axis=1, ignore_index=-100, label_smoothing=0.1" in out
    assert cli.main(["port", text, "--to", "keras,optax", "--json", "--check"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data["targets"]) == {"keras", "optax"}
    assert data["source"]["concept"] == "softmax_cross_entropy"
    assert not data["check"]["failed"]
    for target in data["targets"].values():
        ast.parse(target["native"])
        ast.parse(target["mirror"])


def test_what_cannot_be_expressed_is_said():
    p = port("keras.losses.BinaryCrossentropy()", ["torch", "gluon", "optax"])
    assert p.targets["torch"].status == "exact"  # torch clamps like Keras's clip: reproduced
    assert p.targets["gluon"].status == "approximate"
    assert any("1e-12" in d for d in p.targets["gluon"].differences)
    p = port("torch.nn.BCELoss()", ["keras"])
    assert p.targets["keras"].status == "edges"
    assert any("-100" in d and "1e-7" in d for d in p.targets["keras"].differences)
    p = port("torch.nn.CTCLoss()", ["keras"])
    assert p.targets["keras"].status == "none"
    assert "input lengths" in p.targets["keras"].differences[0]
    p = port("optax.losses.sparsemax_loss", ["torch"])
    assert p.targets["torch"].status == "none"
    assert "no binary sparsemax loss" in p.targets["torch"].differences[0]


@pytest.mark.parametrize(("text", "message"), [
    ("torch.nn.CrossEntropyLos()", "did you mean torch.nn.CrossEntropyLoss"),
    ("nn.CrossEntropyLoss(smoothing=0.1)", "has no argument 'smoothing'; did you mean label_smoothing"),
    ("CrossEntropyLoss", "did you mean torch.nn.CrossEntropyLoss"),
    ("nn.MSELoss(reduction=r)", "reduction=r must be a literal"),
    ("F.cross_entropy(x[0], y)", "pass the array argument input as a plain variable name"),
    ("keras.losses.Huber()(t, p, w, q)", "takes at most 3 positional arguments"),
    ("keras.losses.categorical_generalized_cross_entropy", "needs the argument q"),
    ("F.mse_loss(a, a)", "have the same name 'a'"),
    ("import os", "not a Python expression"),
    ("os.system('ls')", "not a loss spelling polyloss knows"),
])
def test_bad_spellings_give_clear_errors(text, message):
    with pytest.raises(SpellingError, match=None) as info:
        parse(text)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


def test_bad_target_and_cli_errors(capsys):
    with pytest.raises(SpellingError, match="unknown target tensorflow"):
        port("nn.MSELoss()", ["tensorflow"])
    assert cli.main(["port", "nn.MSELos()"]) == 2
    assert "did you mean torch.nn.MSELoss" in capsys.readouterr().err
    assert cli.main(["port"]) == 2


def test_spelling_is_never_evaluated(monkeypatch):
    # a call in an argument is refused, not run
    calls = []
    monkeypatch.setattr(checking, "_run", lambda *a, **k: calls.append(a))
    with pytest.raises(SpellingError):
        parse("nn.MSELoss(reduction=__import__('os').getcwd())")
    assert not calls


def test_docs_equal_the_generated_tables():
    assert DOCS.read_text(encoding="utf-8") == markdown(), (
        "docs/porting.md is stale: regenerate it with `polyloss port --markdown > docs/porting.md`")
    text = markdown()
    for concept in concepts():
        if any(name in loss_names(conv) for conv, name in concept.interpret):
            assert f"## {concept.title}" in text

"""Seed 000's training examples (``examples/``) and the ``polyloss plot`` command.

The examples run shortened (``EPOCHS`` epochs per run) once per installed framework, through
their own command line (``_seed000.main``), which writes the figures and the loss per epoch as
JSON; the curves are compared with NumPy's (hand-written gradient and Adam) per epoch. Missing
frameworks are skipped with the reason.
"""

from __future__ import annotations

import json
import math
import os
import sys

import numpy as np
import pytest

pytest.importorskip("matplotlib", reason="the examples and polyloss plot draw with matplotlib (plot extra)")

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
sys.path.insert(0, EXAMPLES)

import _seed000 as seed  # noqa: E402
import compare  # noqa: E402

from polyloss import cli  # noqa: E402
from polyloss import plot as plots  # noqa: E402

EPOCHS = 8
RTOL = 1e-5  # the per-epoch tolerance; measured on the full runs: <= 1e-7 (see README)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def example_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """{framework: output dir} for each installed framework, or the reason it did not run."""
    out: dict[str, object] = {}
    for fw in compare.FRAMEWORKS:
        module = compare.load(fw)
        if module is None:
            out[fw] = f"{fw} is not installed: " + ", ".join(compare.REQUIRES[fw])
            continue
        if fw == "keras":
            import keras

            if keras.backend.backend() != "tensorflow":
                out[fw] = f"Keras runs on {keras.backend.backend()} in this process, not tensorflow"
                continue
        d = tmp_path_factory.mktemp(fw)
        assert seed.main(fw, module.train, [str(d), "--epochs", str(EPOCHS)]) == 0
        out[fw] = d
    return out


def _ran(example_runs: dict[str, object], fw: str) -> os.PathLike:
    d = example_runs[fw]
    if isinstance(d, str):
        pytest.skip(d)
    return d


def _losses(d: os.PathLike, fw: str) -> dict[str, dict[str, list[float]]]:
    with open(os.path.join(d, f"{fw}_losses.json")) as f:
        return json.load(f)


@pytest.mark.parametrize("fw", compare.FRAMEWORKS)
def test_example_writes_figures_and_losses(example_runs, fw):
    d = _ran(example_runs, fw)
    for task in ("regression", "classification"):
        for kind in ("fit", "curves"):
            path = os.path.join(d, f"{fw}_{task}_{kind}.png")
            with open(path, "rb") as f:
                head = f.read(8)
            assert head == PNG_MAGIC, path
            assert os.path.getsize(path) > 5000, path  # a drawn figure, not an empty canvas
    for run in seed.RUNS:
        curve = _losses(d, fw)[run.name]
        assert len(curve["loss"]) == EPOCHS and len(curve["metric"]) == EPOCHS + 1
        assert curve["loss"][-1] < curve["loss"][0]  # it trained: the comparison below is not of constants


@pytest.mark.parametrize("fw", [f for f in compare.FRAMEWORKS if f != "numpy"])
def test_loss_curves_agree_with_numpy(example_runs, fw):
    """Each framework's loss per epoch (its autograd, its Adam) against NumPy's hand-written gradient
    and Adam, from the same data and initial weights: relative difference <= 1e-5 at every epoch."""
    ref = _losses(_ran(example_runs, "numpy"), "numpy")
    got = _losses(_ran(example_runs, fw), fw)
    for run in seed.RUNS:
        worst = max(compare.rel_diff(a, b) for a, b in zip(got[run.name]["loss"], ref[run.name]["loss"],
                                                            strict=True))
        assert worst <= RTOL, f"{fw} {run.name}: worst relative difference {worst:.2e}"


def test_numpy_full_runs_reach_the_seeds_figures():
    """The seed's printed results (RMSE 0.464-0.465 after 200 epochs, accuracy 0.982-0.990 after 100) on
    our own draw of its data: RMSE within 0.44-0.49 (the noise's standard deviation is 0.5) and accuracy
    >= 0.98."""
    import seed000_numpy

    for res in seed.train_all("numpy", seed000_numpy.train):
        if seed.RUN_BY_NAME[res.run].task == "regression":
            assert 0.44 <= res.final_metric <= 0.49, (res.run, res.final_metric)
        else:
            assert res.final_metric >= 0.98, (res.run, res.final_metric)


def test_adam_epsilon_placement_is_why_eps_is_zero():
    """torch/optax add eps to sqrt(v̂), Keras/MXNet to sqrt(v): one step from v = g² (1-β₂) with eps
    1e-8 differs between the two forms; with eps 0 it is the same step (computed here by hand)."""
    g, w = np.array([[1e-3]]), np.array([[0.0]])
    m, v = (1 - seed.BETA1) * g, (1 - seed.BETA2) * g * g
    keras_form = -seed.LR * math.sqrt(1 - seed.BETA2) / (1 - seed.BETA1) * m / (np.sqrt(v) + 1e-8)
    torch_form, _, _ = seed.adam_numpy(w, g, np.zeros_like(g), np.zeros_like(g), 1, eps=1e-8)
    assert abs(torch_form[0, 0] - keras_form[0, 0]) > 1e-8
    torch_form0, _, _ = seed.adam_numpy(w, g, np.zeros_like(g), np.zeros_like(g), 1, eps=0.0)
    keras_form0 = -seed.LR * math.sqrt(1 - seed.BETA2) / (1 - seed.BETA1) * m / np.sqrt(v)
    assert torch_form0[0, 0] == pytest.approx(keras_form0[0, 0], rel=1e-15)


def test_compare_script_passes(capsys):
    frameworks = [f for f in ("torch", "jax") if compare.load(f) is not None]
    if not frameworks:
        pytest.skip("neither torch nor jax is installed")
    argv = ["--epochs", "5"] + [a for f in frameworks for a in ("--framework", f)]
    status = compare.main(argv)
    out = capsys.readouterr().out
    assert status == 0, out
    assert "all curves agree" in out


@pytest.mark.parametrize("argv", [
    ["--loss", "bce", "--convention", "torch", "--convention", "keras", "--convention", "gluon",
     "--range", "1e-20", "1", "--logx"],
    ["--seed000-focal-ratio"],
    ["--loss", "huber", "--delta", "0.5", "--convention", "polyloss", "--convention", "gluon"],
], ids=["bce-overlay", "focal-ratio", "huber"])
def test_plot_command_writes_png(tmp_path, capsys, argv):
    out = tmp_path / "figure.png"
    assert cli.main(["plot", *argv, "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == PNG_MAGIC
    assert out.stat().st_size > 5000
    assert f"wrote {out}" in capsys.readouterr().out


def test_plot_command_rejects_a_convention_the_loss_lacks(tmp_path, capsys):
    out = tmp_path / "x.png"
    assert cli.main(["plot", "--loss", "focal", "--convention", "gluon", "--out", str(out)]) == 2
    assert "no gluon convention" in capsys.readouterr().err
    assert not out.exists()


def test_bce_curves_show_each_frameworks_clamp():
    """At p = 1e-20 (target 1): torch floors log at -100 so -log p = 46.05; Keras clips p to 1e-7,
    -log 1e-7 = 16.12; Gluon adds 1e-12 inside the log, -log(1e-20 + 1e-12) = 27.63 (by hand)."""
    x, ys = plots.curves("bce", ["torch", "keras", "gluon"], lo=1e-20, hi=1.0, points=21, logx=True)
    assert x[0] == pytest.approx(1e-20)
    assert ys["torch"][0] == pytest.approx(-math.log(1e-20), rel=1e-12)
    assert ys["keras"][0] == pytest.approx(-math.log(1e-7), rel=1e-6)
    assert ys["gluon"][0] == pytest.approx(-math.log(1e-20 + 1e-12), rel=1e-12)


def test_focal_ratio_is_one_minus_p_to_the_gamma():
    p, ratios = plots.focal_ratio()
    assert p[0] == pytest.approx(0.01) and p[-1] == pytest.approx(0.99) and len(p) == 99
    for gamma, r in ratios.items():
        np.testing.assert_allclose(r, (1 - p) ** gamma, rtol=1e-12, err_msg=f"gamma {gamma}")

"""The documented deliberate differences: where polyloss does something other than a native on
purpose, and where a native cannot run, or is less accurate than, what the parity matrix asks.

One list feeds ``polyloss parity`` (its tolerances and references: the only places where a
comparison departs from the tolerance policy), the parity report, and the table in
``docs/conventions.md`` (``python -m polyloss.parity.differences`` prints it; a test checks that
the page holds exactly that table). Each entry says what the native does, what polyloss does
and why; entries the matrix measures give the measured size.

How an entry changes the matrix (all empty: it does not, because the cases keep away from the
input, or the test suite checks the behaviour):

- ``native_tol``: relative tolerance of comparisons with the native, per dtype the native
  computes in, where the native is less accurate than the policy (the measured size, rounded up);
- ``native_runs_in``: the native cannot run a dtype (test dtype -> the dtype it is run in; the
  mirror's result in the test dtype is compared with it);
- ``native_promotes``: the native returns float64 for lower-precision inputs (JAX under
  ``jax_enable_x64``); the mirror keeps the input dtype, compared at the input dtype's tolerance;
- ``native_computes_in``: the native computes in this precision whatever the input dtype;
- ``edges``: the entry applies only to these inputs (empty: every input).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Difference", "DIFFERENCES", "BY_ID", "Rules", "rules_for", "native_dtype_for",
           "render_markdown", "as_dicts"]


@dataclass(frozen=True, eq=False)
class Difference:
    id: str
    convention: str  # "torch", "keras", "gluon", "optax", "canonical" or "every mirror"
    loss: str  # the loss(es), as the user names them
    native: str  # what the native does
    polyloss: str  # what polyloss does
    why: str
    measured: str = ""  # the size, where the parity matrix measures it
    native_tol: dict[str, float] = field(default_factory=dict)
    native_runs_in: dict[str, str] = field(default_factory=dict)
    native_promotes: bool = False
    native_computes_in: str = ""
    edges: tuple[str, ...] = ()
    every_case: bool = False  # applies to every case of its convention

    @property
    def in_matrix(self) -> bool:
        """Whether the parity matrix's comparisons depend on this entry."""
        return bool(self.native_tol or self.native_runs_in or self.native_promotes
                    or self.native_computes_in)


_LOW = ("float16", "bfloat16")
_IN_FLOAT32 = {d: "float32" for d in _LOW}

DIFFERENCES: tuple[Difference, ...] = (
    # ---- every mirror and the canonical API ----------------------------------------------------
    Difference(
        "broadcast-shapes", "every mirror", "every loss",
        "torch warns and returns the (N, N)-broadcast loss for (N, 1) vs (N,); Keras squeezes a "
        "trailing 1 but broadcasts anything else; optax broadcasts",
        "ValueError naming both shapes (after the convention's own reshaping rule: Keras's "
        "squeeze/expand of a trailing 1, Gluon's reshape of the label to the prediction's shape)",
        "a silently wrong number"),
    Difference(
        "enlarging-sample-weight", "every mirror", "losses with sample_weight",
        "Keras and Gluon broadcast a sample_weight that enlarges the loss",
        "ValueError naming both shapes", "a silently wrong number"),
    Difference(
        "low-precision-in-float32", "every mirror", "every loss",
        "float16/bfloat16 inputs are computed in the low precision (torch computes many losses in "
        "float32 inside; Keras loss objects cast to their dtype, float32 by default)",
        "computed in float32, returned in the input dtype (rounded once)",
        "stability; results are within half an ulp of the input dtype of the exact value, closer "
        "than the natives'"),
    Difference(
        "integer-prediction", "every mirror", "every loss",
        "varies (torch raises in backward, Keras's functions compute in integers)",
        "TypeError naming the argument (Keras loss objects cast to their dtype first, as Keras does)",
        "a loss needs a floating prediction"),
    Difference(
        "mixed-frameworks", "every mirror", "every loss",
        "arrays of two frameworks, or on two devices: framework-specific crashes",
        "TypeError / ValueError naming both", "a clear error"),
    Difference(
        "class-index-range", "every mirror", "losses with class indices",
        "out-of-range indices: torch IndexError on CPU, device assert on GPU; TensorFlow "
        "InvalidArgumentError; MXNet pick clips to the nearest class; optax gives NaN, and -1 wraps "
        "to the last class",
        "ValueError naming the argument and the range in eager calls; under jax.jit, tf.function, "
        "torch.compile and on lazy Dask arrays (values not readable) that position's loss is NaN "
        "on every backend", "never a silent wrong number"),
    Difference(
        "float-class-indices", "every mirror", "losses with class indices",
        "floating class indices (e.g. Gluon's float labels): varies",
        "accepted where the framework accepts them if they are whole numbers; ValueError otherwise",
        "a fractional class index has no meaning"),
    Difference(
        "class-weight-length", "every mirror", "losses with class weights, pos_weight, alpha",
        "a vector of the wrong length: varies", "ValueError naming the argument and the shape (C,)",
        "a clear error"),
    Difference(
        "mx-nd-scalar", "every mirror", "scalar losses on classic mx.nd.NDArray",
        "(torch, Keras and optax return 0-d scalars)", "shape (1,)",
        "classic NDArrays have no 0-d arrays (mx.nd.sum is (1,)), and a recorded graph with 0-d "
        "nodes fails in backward() outside NumPy-shape mode"),
    # ---- torch ----------------------------------------------------------------------------------
    Difference(
        "torch-huber-delta", "torch", "huber_loss / HuberLoss (delta <= 0), smooth_l1_loss / "
        "SmoothL1Loss (beta < 0)", "RuntimeError from the kernel at call time",
        "ValueError with torch's message", "the error names the argument"),
    Difference(
        "torch-index-dtype", "torch", "CrossEntropyLoss, NLLLoss", "class indices must be int64",
        "any integer dtype", "no needless cast"),
    Difference(
        "torch-zero-mass-target", "torch", "CrossEntropyLoss with probability targets",
        "NaN where a zero target probability meets a -inf logit",
        "that term contributes exactly 0", "0 · log 0 is 0 for a distribution"),
    Difference(
        "torch-bce-target-gradient", "torch", "binary_cross_entropy / BCELoss",
        "gradient w.r.t. the target at p in {0, 1} is ±inf", "±100 (the clamped logs)",
        "consistent with the clamped value"),
    Difference(
        "torch-soft-margin-overflow", "torch", "SoftMarginLoss / soft_margin_loss",
        "log1p(exp(-y·x)) overflows to inf for y·x < -88 in float32, gradient NaN there",
        "softplus(-y·x): finite, gradient -0.5/N", "a finite loss where one exists"),
    Difference(
        "torch-half-kernels", "torch", "MultiMarginLoss, MultiLabelMarginLoss, CTCLoss / ctc_loss",
        "no float16/bfloat16 kernel on the CPU (NotImplementedError: \"multi_margin_loss_cpu\", "
        "\"multilabel_margin_loss_forward_out_frame\", \"ctc_loss_cpu\" not implemented for 'Half')",
        "computed in float32 and rounded to the input dtype",
        "the mirror runs in every dtype its framework has; the parity matrix compares it with the "
        "native run in float32 on the same (cast) inputs",
        native_runs_in=_IN_FLOAT32),
    Difference(
        "torch-bce-float16-clamp", "torch", "BCELoss / binary_cross_entropy (float16)",
        "its backward (p - y) / max(p(1-p), 1e-12) clamps at 1e-12, which is 0 in float16: NaN "
        "gradient at a right prediction of exactly 0 or 1 (and ±inf at a wrong one)",
        "computes in float32: gradient 0 at a right prediction, ±1e12/N at a wrong one (±inf "
        "once rounded to float16)", "float16 cannot hold the clamp",
        measured="NaN vs 0 on the 0/1-probability input; compared with the native run in float32",
        native_runs_in={"float16": "float32"}, edges=("extreme",)),
    Difference(
        "torch-linear-ce-autocast", "torch", "LinearCrossEntropyLoss / linear_cross_entropy under "
        "torch.autocast", "autocast runs the projection in the autocast dtype: the logits are "
        "rounded to bfloat16/float16 before the float32 cross-entropy (8.5e-4 relative on the "
        "test's 6 x 3 bfloat16 run)",
        "keeps the logits in float32 (input, weight and bias cast up, never down), as the fused "
        "path holds no logits to round", "accuracy; the chunked logits are never materialised",
        measured="equal to torch's run outside autocast on the float32-cast inputs "
                 "(tests/test_frontend_torch.py)"),
    Difference(
        "torch-smoothing-overflow", "torch", "CrossEntropyLoss(weight=w, label_smoothing=0.1)",
        "in float16 the smoothing term Σ_c w_c·(-log q_c) overflows to inf with logits of ±1e4",
        "finite (computed in float32)", "float16 cannot hold the intermediate sum; the result fits",
        measured="native inf, polyloss finite (float16, logits ±1e4); compared with the native "
                 "run in float32 on the same inputs",
        native_runs_in={"float16": "float32"}, edges=("extreme",)),
    # ---- keras ----------------------------------------------------------------------------------
    Difference(
        "keras-huber-delta", "keras", "Huber / huber (delta <= 0)", "computes a linear-only loss",
        "ValueError", "a non-positive delta is a mistake"),
    Difference(
        "keras-integer-prediction", "keras", "the loss functions (mean_squared_error, ...)",
        "compute in integers for an integer y_pred", "TypeError", "a loss needs floats"),
    Difference(
        "keras-logits-recovery", "keras", "probability losses inside a compiled Keras model",
        "the TensorFlow backend replaces clipped probabilities by the logits when y_pred is the "
        "direct output of a Keras sigmoid/softmax (_keras_logits), so a compiled model is unclipped "
        "while an eager call on the same numbers is clipped",
        "sees only values and always clips probabilities (pass logits with from_logits=True for "
        "the exact loss); BinaryFocalCrossentropy(from_logits=True) follows the TensorFlow backend "
        "(exact logits BCE), where Keras on JAX/torch clips", "not reproducible from values"),
    Difference(
        "keras-ctc-float32", "keras", "ctc (the function)",
        "the TensorFlow backend computes CTC in float32, also for float64 inputs (float64 result), "
        "and returns float32 for float16/bfloat16 inputs",
        "computes in float32 too, and returns the input dtype (float16/bfloat16 rounded once)",
        "float64 is reproduced; a low-precision result in the input's dtype, as for every loss",
        measured="compared at float32's tolerance (float16/bfloat16: plus the final rounding)",
        native_computes_in="float32", native_promotes=True),
    Difference(
        "keras-msle-float32-result", "keras", "mean_squared_logarithmic_error (the function)",
        "returns float32 for float16/bfloat16 inputs (its 1e-7 is a float32 constant, which "
        "keras.ops promotes with)", "computes in float32 and returns the input dtype (rounded once)",
        "a result in the input's dtype, as for every loss",
        measured="compared at the input dtype's rounded tolerance", native_promotes=True),
    Difference(
        "keras-ctc-infeasible", "keras", "CTC / ctc, infeasible sequences",
        "a large finite value from TF's own state machine (715.76 on the test inputs)",
        "TF's floor for the initial states, the standard read-out (715.07)",
        "feasible values agree to float32 rounding; an infeasible one has no exact value"),
    Difference(
        "keras-circle-labels", "keras", "Circle / circle",
        "truncates non-whole float labels; accepts other ranks", "ValueError for non-whole labels, a "
        "y_pred that is not 2-D or mismatched label counts; TypeError for non-finite gamma/margin",
        "a silently wrong number"),
    Difference(
        "keras-gce-labels", "keras", "CategoricalGeneralizedCrossEntropy",
        "broadcasts (N, 1) labels to (N, N); returns 1/q for out-of-range labels; truncates "
        "non-whole labels", "squeezes (N, 1) labels; ValueError for out-of-range or non-whole labels "
        "and for q == 0", "a silently wrong number"),
    # ---- gluon ----------------------------------------------------------------------------------
    Difference(
        "gluon-empty-batch", "gluon", "every loss", "fails in shape inference on an empty batch",
        "an empty (0,) result (PoissonNLLLoss: a NaN scalar)", "an empty batch is valid input"),
    Difference(
        "gluon-batch-axis", "gluon", "every loss with batch_axis", "mx.np mode ignores batch_axis "
        "(always averages over axes 1..ndim-1)", "honours batch_axis for every array type",
        "the argument means the same everywhere"),
    Difference(
        "gluon-huber-rho", "gluon", "HuberLoss (rho <= 0)", "divides by rho", "ValueError",
        "a clear error"),
    Difference(
        "gluon-no-bfloat16", "gluon", "every loss", "MXNet 1.9.1 has no bfloat16",
        "polyloss.gluon on another framework's bfloat16 arrays computes in float32 and returns "
        "bfloat16", "the mirror takes every framework's arrays; the parity matrix compares its "
        "bfloat16 cells with the native run in float32 on the same (cast) inputs",
        native_runs_in={"bfloat16": "float32"}, every_case=True),
    Difference(
        "gluon-poisson-float16", "gluon", "PoissonNLLLoss (float16)",
        "computes exp(pred) - target·pred and its mean in float16",
        "computes in float32 and rounds once", "accuracy",
        measured="7.9e-3 relative (8 float16 ulps) on a batch of one, 0.26 ulps for polyloss: "
                 "compared at 1e-2",
        native_tol={"float16": 1e-2}),
    Difference(
        "gluon-triplet-float16", "gluon", "TripletLoss (float16)",
        "sums the squared distances to the positive and to the negative in float16 and subtracts "
        "them: the rounding of two similar sums cancels into the result",
        "computes in float32 and rounds once", "accuracy",
        measured="1.44e-2 relative (15 float16 ulps) on random inputs, 0.18 ulps for polyloss: "
                 "compared at 2e-2",
        native_tol={"float16": 2e-2}),
    Difference(
        "gluon-sigmoid-bce-kink", "gluon", "SigmoidBCELoss on logits",
        "gradient -y at a logit of exactly 0 (from relu/abs)", "σ(0) - y",
        "the derivative of the loss"),
    Difference(
        "gluon-poisson-full", "gluon", "PoissonNLLLoss(compute_full=True)",
        "NaN for zero counts (0·log 0); cannot record its in-place *= under autograd",
        "masks the Stirling term before computing it (finite); differentiable",
        "zero counts are valid"),
    Difference(
        "gluon-log-softmax-float32", "gluon", "SoftmaxCrossEntropyLoss, SDMLLoss (float32)",
        "MXNet's float32 log_softmax kernel is off by up to 4.4e-6 absolute per log-probability "
        "(up to 0.3% relative where log p is near 0), its float32 softrelu by up to ulp(|x|) "
        "(-1.9e-6 at x = -20, where the value is 2e-9)",
        "float32 accuracy", "a more accurate kernel",
        measured="4.4e-6 absolute (5.8 digits on all-equal logits; float64 is exact): compared at "
                 "1e-5 in float32",
        native_tol={"float32": 1e-5}),
    Difference(
        "gluon-sdml-float32-only", "gluon", "SDMLLoss",
        "fails for float64 and float16 inputs (its internal labels are float32)",
        "computes in the input dtype (float16 in float32)",
        "the loss is defined in every dtype; the parity matrix compares float64 and float16 with "
        "the native run in float32 on the same inputs",
        native_runs_in={"float64": "float32", "float16": "float32"}),
    Difference(
        "gluon-ctc-float32-only", "gluon", "CTCLoss",
        "its CTC kernel fails on float64 and float16 data", "computes in the input dtype (float16 "
        "in float32)", "the loss is defined in every dtype; the parity matrix compares float64 and "
        "float16 with the native run in float32 on the same inputs",
        native_runs_in={"float64": "float32", "float16": "float32"}),
    Difference(
        "gluon-ctc-infeasible", "gluon", "CTCLoss, infeasible sequences",
        "gradient is uninitialised memory", "0", "the loss is 0 there, as in MXNet"),
    Difference(
        "gluon-cosine-float64", "gluon", "CosineEmbeddingLoss",
        "fails on float64 inputs (its 1e-12 constant is float32); NaN gradient of the norm at a "
        "zero vector", "computes in the input dtype; finite gradient", "a defined gradient"),
    Difference(
        "gluon-sdml-inputs", "gluon", "SDMLLoss", "fails on an empty batch; reads x1.shape so it "
        "cannot hybridize", "an empty (0,) result; ValueError for non-2-D or mismatched inputs; "
        "hybridizes", "valid input gives a result"),
    # ---- optax ----------------------------------------------------------------------------------
    Difference(
        "optax-huber-delta", "optax", "huber_loss (delta <= 0)", "computes a meaningless loss",
        "ValueError", "a clear error"),
    Difference(
        "optax-huber-gradient", "optax", "huber_loss",
        "branch-free form: backward accumulates delta - delta + r and gives gradient 0 for "
        "residuals below 1e-16·delta", "the quadratic branch is separate: the exact gradient",
        "the derivative of the loss (the difference is below the gradient tolerance of the matrix)"),
    Difference(
        "optax-integer-logits", "optax", "every loss", "computes with integer logits or floating "
        "integer-labels", "TypeError", "a clear error"),
    Difference(
        "optax-kl-zero-target", "optax", "kl_divergence",
        "NaN gradient w.r.t. a zero target", "finite", "0 · log 0 is 0"),
    Difference(
        "optax-multiclass-hinge-float64", "optax", "multiclass_hinge_loss, multiclass_perceptron_loss",
        "returns float64 for float32/float16 scores under jax_enable_x64 (jax.nn.one_hot is "
        "float64)", "keeps the scores' dtype", "a loss in the model's precision",
        native_promotes=True),
    Difference(
        "optax-sparsemax-x64", "optax", "multiclass_sparsemax_loss",
        "under jax_enable_x64 the projection makes float32 (and float16/bfloat16) scores float64 "
        "(its 1/k is float64) and its custom JVP fails (\"Custom JVP rule must produce primal and "
        "tangent outputs with corresponding shapes and dtypes\"); accepts 2-D scores only",
        "keeps the input dtype (float16/bfloat16 computed in float32); any leading shape (..., C)",
        "the loss in the model's precision; the parity matrix compares float32 and lower with the "
        "native run in float64 on the same inputs",
        native_runs_in={"float32": "float64", "float16": "float64", "bfloat16": "float64"}),
    Difference(
        "optax-integer-ce-bfloat16", "optax", "softmax_cross_entropy_with_integer_labels (bfloat16)",
        "computes logsumexp(logits) - logits[label] in bfloat16: at logits of ±1e4 (ulp 64) the "
        "difference of two ~1e4 numbers keeps few bits",
        "computes in float32 and rounds once", "accuracy",
        measured="0.38 relative (49 bfloat16 ulps) on logits of ±1e4 under jax.jit (8.7 float16 "
                 "ulps, within the policy): compared at 0.4",
        native_tol={"bfloat16": 0.4}, edges=("extreme",)),
    Difference(
        "optax-ntxent-float16-overflow", "optax", "ntxent (float16)",
        "exp(cos/τ) with τ = 0.07 reaches e^14.3 ≈ 1.6e6, beyond float16's 65504: inf when a row "
        "has no negative", "computes in float32: finite", "float16 cannot hold the intermediate",
        measured="inf vs finite on the one-class input; compared with the native run in float32",
        native_runs_in={"float16": "float32"}, edges=("one_class",)),
    Difference(
        "optax-ranking-float16-overflow", "optax", "ranking_softmax_loss (float16)",
        "overflows to inf at logits of ±1e4 in float16", "computes in float32: finite",
        "float16 cannot hold the intermediate",
        measured="inf vs finite on logits of ±1e4; compared with the native run in float32",
        native_runs_in={"float16": "float32"}, edges=("extreme",)),
    Difference(
        "optax-ranking-shapes", "optax", "ranking_softmax_loss",
        "broadcasts where/weights/labels; NaN gradient w.r.t. weights at masked items",
        "needs where/weights/labels of the logits' shape, casts weights to the logits' dtype, "
        "gradient 0 at masked items", "a silently wrong number; a defined gradient"),
    Difference(
        "optax-fenchel-young-shapes", "optax", "make_fenchel_young_loss",
        "broadcasts targets", "needs targets of the scores' shape", "a silently wrong number"),
    Difference(
        "optax-reduce-fn", "optax", "ranking_softmax_loss(reduce_fn=jnp.mean / jnp.sum)",
        "calls the JAX function", "runs its Array API equivalent on any backend",
        "the mirror takes every framework's arrays"),
    Difference(
        "optax-ntxent", "optax", "ntxent", "broadcasts a B×B×D array; accepts any ranks",
        "a matrix product (results differ by summation order only); 2-D embeddings and 1-D labels "
        "of the same length", "memory; a clear error"),
    Difference(
        "optax-ctc-float64", "optax", "ctc_loss, ctc_loss_with_forward_probs",
        "returns float64 for float32/float16 logits under jax_enable_x64", "keeps the logits' dtype",
        "a loss in the model's precision", native_promotes=True),
    Difference(
        "optax-ctc-leak", "optax", "ctc_loss with log_epsilon above about -50",
        "adds its exp(log_epsilon)-sized leak terms in its own order",
        "the same terms in another order", "they vanish in floating point at the default -1e5"),
    Difference(
        "optax-ctc-padding-labels", "optax", "ctc_loss",
        "out-of-range padding labels get probability 1 (one_hot)",
        "treated as the blank in the states past a sequence's end", "padding is not a label"),
    # ---- CTC, every convention -----------------------------------------------------------------
    Difference(
        "ctc-bad-input", "every mirror", "CTC",
        "read out of bounds or compute a meaningless number for labels outside [0, C) or equal to "
        "the blank within a sequence (torch and MXNet compute garbage, optax's one_hot gives "
        "log-probability 0), lengths outside [0, S] / [0, T], a label sequence longer than its "
        "frames (torch inf, optax ≈ 1e5, TF ≈ 700), a 0 inside a Keras label row (read as a label), "
        "optax paddings other than 0/1 or labels not right-padded",
        "ValueError naming the argument in eager calls, also for -1 inside a canonical label row "
        "and log-probabilities > 0 with from_logits=False (a label sequence longer than its frames "
        "is 0 with torch's zero_infinity=True and in Gluon, as in the natives; a Gluon label "
        "dimension longer than T raises as MXNet does); a sequence with an invalid label is NaN "
        "under jit",
        "never a silent wrong number"),
    Difference(
        "torch-ctc-infeasible", "torch", "CTCLoss, infeasible sequences",
        "inf with a NaN gradient", "inf with gradient 0", "a defined gradient"),
)

BY_ID: dict[str, Difference] = {d.id: d for d in DIFFERENCES}


@dataclass(frozen=True)
class Rules:
    native_tol: dict[str, float]
    native_promotes: bool
    native_computes_in: str


def _applies(d: Difference, edge: str) -> bool:
    return not d.edges or edge in d.edges


def _entries(case: Any) -> list[Difference]:
    own = [BY_ID[i] for i in getattr(case, "differences", ())]
    return own + [d for d in DIFFERENCES if d.every_case and d.convention == case.convention]


def rules_for(case: Any, dtype: str, edge: str) -> Rules:
    """How the matrix compares ``case`` on ``edge`` with its native."""
    tol: dict[str, float] = {}
    promotes, computes_in = False, ""
    for d in _entries(case):
        if not _applies(d, edge):
            continue
        for k, v in d.native_tol.items():
            tol[k] = max(tol.get(k, 0.0), v)
        promotes = promotes or d.native_promotes
        computes_in = computes_in or d.native_computes_in
    return Rules(tol, promotes, computes_in)


def native_dtype_for(case: Any, dtype: str, edge: str) -> tuple[str, str]:
    """The dtype the native of ``case`` runs in for a ``dtype`` cell on ``edge``, and the id of
    the entry that says so (``(dtype, "")`` when the native runs the dtype itself)."""
    for d in _entries(case):
        if _applies(d, edge) and dtype in d.native_runs_in:
            return d.native_runs_in[dtype], d.id
    return dtype, ""


def as_dicts() -> list[dict[str, Any]]:
    """The list as plain data (JSON, the report)."""
    return [{"id": d.id, "convention": d.convention, "loss": d.loss, "native": d.native,
             "polyloss": d.polyloss, "why": d.why, "measured": d.measured,
             "in_matrix": d.in_matrix, "native_tol": dict(d.native_tol),
             "native_runs_in": dict(d.native_runs_in), "native_promotes": d.native_promotes,
             "native_computes_in": d.native_computes_in, "edges": list(d.edges),
             "every_case": d.every_case}
            for d in DIFFERENCES]


BEGIN = "<!-- BEGIN deliberate differences: generated by `python -m polyloss.parity.differences` -->"
END = "<!-- END deliberate differences -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown() -> str:
    """The Markdown table for ``docs/conventions.md``, between its markers."""
    lines = [BEGIN, "",
             "| id | convention | loss | the native | polyloss | why | in the parity matrix |",
             "|---|---|---|---|---|---|---|"]
    for d in DIFFERENCES:
        matrix = d.measured
        rules = []
        if d.native_tol:
            rules.append("tolerance " + ", ".join(f"{v:g} in {k}" for k, v in d.native_tol.items()))
        if d.native_runs_in:
            rules.append("native run in " + ", ".join(f"{v} for {k}" for k, v in d.native_runs_in.items()))
        if d.native_promotes:
            rules.append("compared at the input dtype's tolerance")
        if d.native_computes_in:
            rules.append(f"compared at {d.native_computes_in}'s tolerance")
        if d.edges:
            rules.append("on the " + ", ".join(d.edges) + " input")
        if rules:
            matrix = (matrix + "; " if matrix else "") + "; ".join(rules)
        lines.append("| " + " | ".join(_cell(x) for x in (
            f"`{d.id}`", d.convention, d.loss, d.native, d.polyloss, d.why, matrix or "—")) + " |")
    lines += ["", END]
    return "\n".join(lines)


def update_markdown(path: str) -> bool:
    """Replace the table between the markers in ``path``; True when the file changed."""
    with open(path) as f:
        text = f.read()
    start, end = text.index(BEGIN), text.index(END) + len(END)
    new = text[:start] + render_markdown() + text[end:]
    if new != text:
        with open(path, "w") as f:
            f.write(new)
    return new != text


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["--write"]:  # python -m polyloss.parity.differences --write docs/conventions.md
        print("updated" if update_markdown(sys.argv[2]) else "up to date")
    else:
        print(render_markdown())

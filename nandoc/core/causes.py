"""The catalogue of cause identifiers: one place that feeds `explain`, fix lines and docs.

Ids never change meaning. A renamed cause keeps its old id in `ALIASES`.
`tier` orders root causes above their symptoms: the further upstream a cause sits in the
pipeline (data, then model and loss, then training dynamics, then evaluation), the lower its tier.
"""

from __future__ import annotations

from dataclasses import dataclass

TIER_DATA = 0
TIER_MODEL = 1
TIER_DYNAMICS = 2
TIER_EVALUATION = 3


@dataclass(frozen=True)
class Cause:
    id: str
    summary: str
    tier: int
    what: str
    why: str
    confirm: str
    fix: str
    example: str


_CAUSES = [
    Cause(
        "data-nonfinite",
        "NaN or ±Inf in features or targets",
        TIER_DATA,
        "A feature or target cell is NaN, ±Inf, empty, or text that does not parse as a number.",
        "One NaN input makes every activation it touches NaN; the loss and then every weight "
        "follow after the first update. On x86 CPUs a fused MatMul+BiasAdd+ReLU can hide it from "
        "the logged loss while the weights are already NaN.",
        "`nandoc check` lists the columns, counts and first rows; `df.isna().sum()` agrees.",
        "Drop or impute the rows before training, and make the loader fail on unparsed text.",
        "df = df.replace([np.inf, -np.inf], np.nan).dropna(subset=feature_cols + [target])",
    ),
    Cause(
        "data-unscaled",
        "feature magnitudes large enough to overflow or blow up activations",
        TIER_DATA,
        "Feature columns whose values or spread are orders of magnitude away from ~1.",
        "Large inputs give large pre-activations; squares in variance, exp in softmax/sigmoid "
        "and the first gradients overflow float32 (max 3.4e38) or make the first update huge.",
        "Compare each column's range with the others; `nandoc check` lists the offending columns.",
        "Scale the features, fitted on the training rows only (StandardScaler, or RobustScaler "
        "when there are outliers), or add a keras.layers.Normalization adapted to the data.",
        "norm = keras.layers.Normalization(); norm.adapt(x_train)\n"
        "model = keras.Sequential([keras.Input(x_train.shape[1:]), norm, ...])",
    ),
    Cause(
        "zero-variance-normalization",
        "a normalization step divides by a column's zero variance",
        TIER_DATA,
        "A Normalization layer (or a scaler) whose variance for some feature is 0: the column "
        "was constant in the data it was adapted to.",
        "x / sqrt(0) is inf; Keras 3 divides by max(sqrt(var), 1e-7) instead, so any value that "
        "differs from the adapt-time constant is multiplied by about 1e7 and overflows downstream.",
        "Look at the layer's `variance` weights for zeros; `nandoc check` names the features.",
        "Drop constant columns before training, or adapt on data where they vary.",
        "x = x[:, x.std(axis=0) > 0]  # then adapt the Normalization layer again",
    ),
    Cause(
        "label-out-of-range",
        "targets outside the loss's domain",
        TIER_DATA,
        "Binary labels outside [0, 1], class ids < 0 or >= the number of classes, one-hot "
        "targets of the wrong width, or negative targets into log-based losses (MSLE, Poisson, "
        "KLD).",
        "Cross-entropy of a label of 2 is unbounded below; an out-of-range sparse class id "
        "raises on CPU and silently gives NaN on GPU; log of a negative target is NaN.",
        "Compare the target's unique values with the output layer's width and the loss.",
        "Remap the labels into the loss's domain, or pick the loss that matches them.",
        "y = (y > 0).astype('float32')  # binary\n"
        "y = pd.factorize(y)[0]  # sparse class ids 0..n-1",
    ),
    Cause(
        "empty-validation",
        "the validation split or its windows hold no samples",
        TIER_EVALUATION,
        "The validation rows are fewer than one window, or the split rounds to zero rows.",
        "A mean over zero samples is NaN (Keras 2), or Keras 3 silently drops val_loss and warns "
        "that the input ran out of data; early stopping and checkpoints then watch nothing.",
        "Count the validation rows and the windows they yield.",
        "Make the validation segment at least one window long, or lower the window length.",
        "validation_split = 0.2  # and check: rows * 0.2 >= window length",
    ),
    Cause(
        "softmax-single-unit",
        "softmax over an axis of size 1: the output is always 1",
        TIER_MODEL,
        "A softmax applied over an axis that holds a single unit, e.g. "
        "Dense(1, activation='softmax').",
        "softmax(z) = exp(z) / sum(exp(z)) = 1 for one unit, whatever z: predictions are constant "
        "and accuracy freezes at the positive rate, while Keras 3's cross-entropy still reads the "
        "cached logits, so the loss falls and hides it.",
        "Predict on a few samples: every output is exactly 1.0.",
        "For binary classification use Dense(1, activation='sigmoid') with binary_crossentropy, "
        "or Dense(2, activation='softmax') with sparse_categorical_crossentropy.",
        "outputs = keras.layers.Dense(1, activation='sigmoid')(x)",
    ),
    Cause(
        "activation-loss-mismatch",
        "probabilities fed to a loss expecting logits, or the reverse",
        TIER_MODEL,
        "A sigmoid/softmax output with from_logits=True, or a linear output with a "
        "probability loss (from_logits=False).",
        "A linear output read as a probability goes negative or above 1, and log() of it is NaN "
        "(Keras clips to [1e-7, 1-1e-7], which hides it but kills the gradient); probabilities "
        "read as logits squash the gradient and train badly.",
        "Read the output layer's activation and the loss's from_logits.",
        "Make them agree: a linear output with from_logits=True is the most stable pair.",
        "outputs = keras.layers.Dense(1)(x)\n"
        "model.compile(loss=keras.losses.BinaryCrossentropy(from_logits=True))",
    ),
    Cause(
        "unclipped-log",
        "log of a value that reaches 0 (or goes negative)",
        TIER_MODEL,
        "A log() in a custom loss, metric or layer whose argument can be 0 or negative.",
        "log(0) = -inf, and its gradient 1/x is inf; log of a negative number is NaN.",
        "Evaluate the loss at the output's end points (0 and 1 for a sigmoid).",
        "Clip the argument first, or use the built-in loss that does.",
        "y_pred = keras.ops.clip(y_pred, 1e-7, 1 - 1e-7)\nloss = -keras.ops.log(y_pred)",
    ),
    Cause(
        "division-by-zero",
        "a division whose denominator reaches 0",
        TIER_MODEL,
        "A `/` or divide() in a custom loss, metric or layer whose denominator can be 0.",
        "x / 0 is ±inf and 0 / 0 is NaN; the gradient of 1/x is -1/x², infinite at 0.",
        "Evaluate the expression where the denominator is 0.",
        "Add an epsilon to the denominator or guard it with a safe where.",
        "den = keras.ops.where(keras.ops.abs(den) < 1e-7, 1e-7, den)\nout = num / den",
    ),
    Cause(
        "sqrt-at-zero",
        "sqrt (or pow with exponent < 1) at 0: infinite gradient",
        TIER_MODEL,
        "sqrt(x), x ** 0.5, or a fractional power of a value that reaches 0 (or goes negative).",
        "The forward value at 0 is fine, but d sqrt(x)/dx = 1/(2 sqrt(x)) is inf at 0 and "
        "the backward pass turns it into NaN (0 * inf).",
        "Evaluate the gradient where the argument is 0.",
        "Add a small epsilon inside the root.",
        "norm = keras.ops.sqrt(keras.ops.sum(x * x, axis=-1) + 1e-12)",
    ),
    Cause(
        "exp-overflow",
        "exp (or a pow) overflows to inf",
        TIER_MODEL,
        "exp(x) of an unbounded x in a custom loss, metric or layer.",
        "float32 exp overflows above x ≈ 88.7, float16 above ≈ 11; inf then meets a subtraction "
        "or a zero and becomes NaN.",
        "Evaluate the expression at the largest value the input reaches.",
        "Clip the exponent, or rewrite with log-sum-exp / softplus style stable forms.",
        "y = keras.ops.exp(keras.ops.minimum(x, 80.0))",
    ),
    Cause(
        "where-gradient-trap",
        "where/switch whose unselected branch is non-finite: finite forward, NaN gradient",
        TIER_MODEL,
        "where(cond, safe, unsafe) where `unsafe` is inf or NaN at the points where cond "
        "selects `safe`.",
        "where() routes a zero gradient into the unselected branch, and 0 * inf = NaN: the loss "
        "stays finite while the gradient, then the weights, become NaN. float64 only delays it.",
        "Evaluate the gradient (not the value) at the points where the condition is true.",
        "The 'double where': feed the unsafe branch a harmless input where it is not selected.",
        "small = keras.ops.abs(x) < 0.1\n"
        "x_safe = keras.ops.where(small, 1.0, x)  # unselected branch never sees 0\n"
        "f = keras.ops.where(small, 0.5 + x / 12, 1 / (1 - keras.ops.exp(-x_safe)) - 1 / x_safe)",
    ),
    Cause(
        "tensor-python-branch",
        "Python if/and/or on a tensor inside a loss or layer",
        TIER_MODEL,
        "A Python `if`, `while`, `and`, `or` or `not` whose condition is a tensor.",
        "Compiled fit raises OperatorNotAllowedInGraphError; run_eagerly raises 'truth value "
        "of an array is ambiguous'; work-arounds end up computing something else than intended.",
        "Run one batch through the loss with run_eagerly=True.",
        "Use an element-wise keras.ops.where, or a mask multiplication.",
        "weight = keras.ops.where(keras.ops.not_equal(y_true, 0), 10.0, 1.0)\n"
        "loss = weight * bce",
    ),
    Cause(
        "exploding-gradients",
        "gradient norms grow by orders of magnitude before the NaN",
        TIER_DYNAMICS,
        "The global gradient norm grows step after step until it overflows.",
        "Each update makes the next gradient larger; the weights overflow, then the loss is NaN.",
        "Log the gradient norm per step (`nandoc replay` does).",
        "Clip the gradients (clipnorm=1.0 on the optimizer), lower the learning rate, and look "
        "for an unbounded op upstream.",
        "optimizer = keras.optimizers.Adam(learning_rate=1e-3, clipnorm=1.0)",
    ),
    Cause(
        "learning-rate-too-high",
        "the loss diverges from the first steps at the configured learning rate",
        TIER_DYNAMICS,
        "The loss grows from the first steps instead of falling.",
        "Steps overshoot the minimum and every step lands higher, until values overflow.",
        "Re-run the first steps at a tenth of the rate; the loss falls.",
        "Lower the learning rate (x0.1), or add a warm-up schedule.",
        "optimizer = keras.optimizers.Adam(learning_rate=1e-4)",
    ),
    Cause(
        "float16-overflow",
        "float16 values pass 65504 (mixed precision without loss scaling)",
        TIER_MODEL,
        "Activations or gradients computed in float16 exceed its range.",
        "float16 overflows to inf above 65504; without a LossScaleOptimizer small gradients "
        "underflow and large ones overflow. A reloaded mixed_float16 model has lost its scaler.",
        "Watch each layer's max |value| against 65504.",
        "Wrap the optimizer in keras.optimizers.LossScaleOptimizer, keep the output layer in "
        "float32, or train in float32.",
        "opt = keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam())",
    ),
    Cause(
        "domain-error",
        "an op evaluated outside its domain or at a singular point",
        TIER_MODEL,
        "acos/asin/atanh at or past ±1, lgamma/digamma at 0 or a negative integer, a fractional "
        "power of a negative number, erfinv at ±1, and the like, in a loss, a layer or a metric.",
        "Outside its domain such an op returns NaN; at the edge of it (acos(±1), atanh(±1)) its "
        "gradient is infinite, and 0 * inf = NaN in the backward pass. A normalised dot product "
        "reaches exactly ±1 in float32 far more often than one expects.",
        "Evaluate the op at the values its input really reaches; `nandoc check` names the op.",
        "Clip the input strictly inside the domain before the op.",
        "cos = keras.ops.clip(cos, -1 + 1e-6, 1 - 1e-6)\nangle = keras.ops.arccos(cos)",
    ),
    Cause(
        "input-index-out-of-range",
        "integer inputs outside an Embedding's input_dim or a lookup table",
        TIER_DATA,
        "Token or category ids that are negative or >= the Embedding's input_dim.",
        "On CPU the gather raises InvalidArgumentError; on GPU it silently returns zeros, so the "
        "model trains on wrong inputs and its loss can stall or blow up.",
        "Compare the largest id in the data with the Embedding's input_dim.",
        "Size the Embedding to the vocabulary (input_dim = max id + 1), or map unknown ids to an "
        "out-of-vocabulary index.",
        "vocab = int(x.max()) + 1\nkeras.layers.Embedding(input_dim=vocab, output_dim=16)",
    ),
    Cause(
        "nonfinite-unexplained",
        "a non-finite value that nandoc observed and could not attribute to a known cause",
        TIER_EVALUATION,
        "nandoc saw a NaN or an inf in training (its burst, replay or the callback) and no check "
        "could tie it to a cause; the finding says where it was first seen.",
        "Whatever made it, a NaN spreads: through every layer it reaches, into the loss and, "
        "after one update, into every weight.",
        "Re-run the failing step from the last finite weights layer by layer (`nandoc replay` "
        "does), and look at the op and the rows the finding names.",
        "Start where it was first seen: clip or guard the op there, check the rows it names, "
        "and lower the learning rate if it came from the update.",
        "model.compile(optimizer=keras.optimizers.Adam(1e-4, clipnorm=1.0), loss=loss)",
    ),
]

CAUSES: dict[str, Cause] = {c.id: c for c in _CAUSES}

# Old id -> current id. Ids are never reused for another meaning.
ALIASES: dict[str, str] = {}


def get_cause(cause_id: str) -> Cause:
    """Look a cause up by id or alias; raises KeyError for an unknown id."""
    return CAUSES[ALIASES.get(cause_id, cause_id)]

"""Which call is which math op: import aliases, dotted names, the op families the walker knows."""

from __future__ import annotations

import ast
import re

# Modules whose functions are tensor math. A call is classified only when its dotted name
# resolves into one of them, so `self.log(...)` or `logger.log(...)` never counts.
MATH_ROOTS = frozenset({"keras", "tensorflow", "numpy", "math", "jax", "torch", "scipy",
                        "tf_keras"})
# The usual aliases, for snippets that use them without importing (or import them indirectly).
CONVENTIONAL = {
    "ops": "keras.ops", "K": "keras.backend", "backend": "keras.backend", "keras": "keras",
    "tf": "tensorflow", "np": "numpy", "jnp": "jax.numpy", "tnp": "tensorflow.experimental.numpy",
    "math": "math", "torch": "torch",
}

LOG = frozenset({"log", "log2", "log10"})
LOG1P = frozenset({"log1p"})
DIVIDE = frozenset({"divide", "true_divide", "truediv", "div", "realdiv", "floor_divide",
                    "floordiv"})
RECIPROCAL = frozenset({"reciprocal"})
SQRT = frozenset({"sqrt", "rsqrt"})
NORM = frozenset({"norm", "euclidean_norm"})
POW = frozenset({"pow", "power", "float_power"})
EXP = {"exp": 88.7, "expm1": 88.7, "exp2": 128.0}
WHERE = frozenset({"where", "switch"})
SELECT_NAMES = WHERE | {"select"}  # what a three-operand select is called, whatever its module
CLIP = frozenset({"clip", "clip_by_value"})
MAXIMUM = frozenset({"maximum"})
MINIMUM = frozenset({"minimum"})
# Not tensors: shapes, ranks, dtypes. Python branches on them are fine, divisions by them too.
STATIC = frozenset({"shape", "ndim", "rank", "size", "int_shape", "dtype", "floatx",
                    "is_tensor", "is_keras_tensor", "standardize_dtype", "result_type",
                    "image_data_format", "backend", "is_float_dtype", "is_int_dtype"})
STATIC_ATTRS = frozenset({"shape", "dtype", "ndim", "name", "device", "rank", "trainable",
                          "built", "is_tensor"})
STATIC_BUILTINS = frozenset({"len", "isinstance", "issubclass", "hasattr", "callable", "type",
                             "print", "str", "repr", "range", "id", "format"})
CONSTANT_LIKE = {"epsilon": 1e-7, "ones_like": 1.0, "zeros_like": 0.0, "ones": 1.0, "zeros": 0.0}
FILL = frozenset({"full", "full_like", "fill"})  # the fill value is the second argument
# Output ranges, whatever the input.
RANGES = {
    "sigmoid": (1e-38, 1.0), "softmax": (1e-38, 1.0), "hard_sigmoid": (0.0, 1.0),
    "tanh": (-1.0, 1.0), "sin": (-1.0, 1.0), "cos": (-1.0, 1.0), "soft_sign": (-1.0, 1.0),
    "softsign": (-1.0, 1.0), "l2_normalize": (-1.0, 1.0), "relu": (0.0, float("inf")),
    "relu6": (0.0, 6.0), "softplus": (1e-38, float("inf")), "elu": (-1.0, float("inf")),
    "cosh": (1.0, float("inf")), "sign": (-1.0, 1.0), "logical_and": (0.0, 1.0),
    "logical_or": (0.0, 1.0), "logical_not": (0.0, 1.0), "equal": (0.0, 1.0),
    "not_equal": (0.0, 1.0), "greater": (0.0, 1.0), "less": (0.0, 1.0),
    "greater_equal": (0.0, 1.0), "less_equal": (0.0, 1.0), "one_hot": (0.0, 1.0),
}
# Keep their first argument's range (reshapes, casts, selections, means, extremes).
PASSTHROUGH = frozenset({
    "cast", "reshape", "expand_dims", "squeeze", "transpose", "flatten", "ravel",
    "stop_gradient", "convert_to_tensor", "identity", "repeat", "tile", "broadcast_to",
    "gather", "take", "take_along_axis", "gather_nd", "boolean_mask", "slice", "moveaxis",
    "swapaxes", "reverse", "flip", "sort", "roll", "mean", "reduce_mean", "average", "max",
    "amax", "reduce_max", "min", "amin", "reduce_min", "median", "round", "floor", "ceil",
    "nan_to_num", "squeeze_dims", "array", "asarray", "float32", "float64",
})
SUMS = frozenset({"sum", "reduce_sum", "cumsum", "nansum"})
ABS = frozenset({"abs", "absolute", "fabs"})
SQUARE = frozenset({"square"})
# Numerically stable by construction: never a suspect, whatever the argument.
STABLE = frozenset({"divide_no_nan", "div_no_nan", "xlogy", "xdivy", "xlog1py", "log_softmax",
                    "logsumexp", "reduce_logsumexp", "log_sigmoid", "softmax_cross_entropy"})

_EPS_NAME = re.compile(r"(^|_)(eps|epsilon|smooth|tiny)(_|\d|$)", re.IGNORECASE)


def looks_like_epsilon(identifier: str) -> bool:
    """`EPS`, `eps1`, `self.epsilon`, `smooth`: names authors keep a small positive value in."""
    return bool(_EPS_NAME.search(identifier))


def import_aliases(tree: ast.AST) -> dict[str, str]:
    """Local name -> dotted module path, from every import in the file."""
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    aliases[a.asname] = a.name
                else:
                    root = a.name.split(".")[0]
                    aliases[root] = root
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                aliases[a.asname or a.name] = f"{node.module}.{a.name}"
    return aliases


def dotted(node: ast.expr) -> list[str] | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return parts[::-1]


def math_op(func: ast.expr, aliases: dict[str, str]) -> str | None:
    """The op name of a call into a math module (`ops.log` -> "log"), else None."""
    parts = dotted(func)
    if not parts:
        return None
    root = aliases.get(parts[0]) or CONVENTIONAL.get(parts[0])
    if root is None:
        return None
    full = root.split(".") + parts[1:]
    return full[-1] if full[0] in MATH_ROOTS and len(full) > 1 else None


def ops_prefix(aliases: dict[str, str]) -> str:
    """How this file spells keras.ops, for fixes written in the user's own style."""
    names = sorted((k for k, v in aliases.items() if v in ("keras.ops", "tensorflow.keras.ops")),
                   key=len)
    return names[0] if names else "keras.ops"


def is_where(node: ast.AST | None) -> bool:
    """`where(cond, a, b)`, `K.switch(cond, a, b)`, `select(cond, a, b)` with its three operands
    written positionally: the calls the double-where rewrite applies to, in the fix text and in
    the rewritten module that verifies it."""
    if not isinstance(node, ast.Call) or len(node.args) != 3:
        return False
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    return name in SELECT_NAMES


def data_names(node: ast.AST | None) -> list[str]:
    """Variables read in an expression, in order; module names and called functions left out."""
    out: list[str] = []
    skip = {id(c.func) for c in ast.walk(node) if isinstance(c, ast.Call)} if node else set()
    for n in ast.walk(node) if node else []:
        if (isinstance(n, ast.Name) and id(n) not in skip and n.id not in CONVENTIONAL
                and n.id not in out and n.id != "self"):
            out.append(n.id)
    return out

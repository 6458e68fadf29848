"""The static read of custom-object source: each cause fires on the classic mistake and stays
silent on its guarded rewrite. No TensorFlow needed: the checks read text."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

import nandoc.checks.source.python_branch
import nandoc.checks.source.unsafe_math
import nandoc.checks.source.where_trap  # noqa: F401  (importing registers the checks)
from nandoc.analysis.source import static_suspects
from nandoc.config import Config
from nandoc.core.finding import Finding, Severity
from nandoc.core.registry import all_checks
from nandoc.core.report import Outcome
from nandoc.engine.inputs import Inputs
from nandoc.engine.runner import run_checks
from nandoc.loading.custom_objects import SourceFile

SOURCE_CHECKS = ("source-python-branch", "source-unsafe-math", "source-where-trap")

SPARSE_PENALTY = """\
from keras import ops

def sparse_penalty_logits(y_true, y_pred):
    penalty = 10
    if y_true != 0:
        loss = -penalty * ops.sum((y_true * ops.log(y_pred) + (1 - y_true) * ops.log(1 - y_pred)))
    else:
        loss = -ops.sum((y_true * ops.log(y_pred) + (1 - y_true) * ops.log(1 - y_pred)))
    return loss
"""

WHERE_TRAP = """\
from keras import ops

def f(x):
    return ops.where(ops.abs(x) < 0.1, 0.5 + x / 12, 1 / (1 - ops.exp(-x)) - 1 / x)

def where_loss(y_true, y_pred):
    x = y_pred - y_true
    return ops.mean(f(x) + f(x + 50))
"""

DOUBLE_WHERE = """\
from keras import ops

def f(x):
    small = ops.abs(x) < 0.1
    x_safe = ops.where(small, 1.0, x)
    return ops.where(small, 0.5 + x / 12, 1 / (1 - ops.exp(-x_safe)) - 1 / x_safe)

def where_loss(y_true, y_pred):
    x = y_pred - y_true
    return ops.mean(f(x) + f(x + 50))
"""

CLIPPED = """\
from keras import ops

def sparse_penalty_logits(y_true, y_pred):
    y_pred = ops.clip(y_pred, 1e-7, 1 - 1e-7)
    weight = ops.where(ops.not_equal(y_true, 0), 10.0, 1.0)
    bce = y_true * ops.log(y_pred) + (1 - y_true) * ops.log(1 - y_pred)
    return -ops.sum(weight * bce)
"""


@dataclass(frozen=True)
class Case:
    id: str
    code: str
    expect: tuple[tuple[str, str], ...] = ()  # (cause, a fragment of the line it is on)


CASES = [
    Case("tensor-python-branch-fires", SPARSE_PENALTY, (
        ("tensor-python-branch", "if y_true != 0"),
        ("unclipped-log", "-penalty *"),
        ("unclipped-log", "loss = -ops.sum"))),
    Case("where-gradient-trap-fires", WHERE_TRAP, (("where-gradient-trap", "ops.where("),)),
    Case("unclipped-log-silent-after-clip", CLIPPED),
    Case("where-gradient-trap-silent-double-where", DOUBLE_WHERE),
    Case("tensor-python-branch-silent-static", """\
import keras
from keras import ops

def loss(y_true, y_pred, from_logits=False, axis=-1):
    if y_pred.shape[-1] == 1:
        y_pred = ops.squeeze(y_pred, axis)
    if len(y_true.shape) > 1 and ops.ndim(y_pred) == 2:
        pass
    if from_logits:
        y_pred = ops.sigmoid(y_pred)
    if y_true is None or isinstance(y_true, list):
        return 0.0
    return ops.mean(ops.square(y_true - y_pred))

class Weighted(keras.losses.Loss):
    def __init__(self, from_logits=False):
        super().__init__()
        self.from_logits = from_logits

    def call(self, y_true, y_pred):
        if self.from_logits:
            y_pred = ops.sigmoid(y_pred)
        return ops.mean(ops.square(y_true - y_pred))

class Drop(keras.layers.Layer):
    def call(self, inputs, training=None, mask=None):
        if training:
            inputs = inputs * 0.5
        if mask is not None:
            inputs = inputs * mask
        return inputs
"""),
    Case("tensor-python-branch-fires-and-or", """\
from keras import ops

def loss(y_true, y_pred):
    both = (y_true > 0) and (y_pred > 0.5)
    either = y_true or y_pred
    return ops.mean(ops.cast(both, "float32") + either)
""", (("tensor-python-branch", "both ="), ("tensor-python-branch", "either ="))),
    Case("tensor-python-branch-fires-while", """\
from keras import ops

def loss(y_true, y_pred):
    while ops.any(y_pred > 1):
        y_pred = y_pred / 2
    return ops.mean(y_pred)
""", (("tensor-python-branch", "while"),)),
    Case("tensor-python-branch-fires-not-ternary-chain-elif", """\
from keras import ops

def loss(y_true, y_pred):
    a = y_pred if y_true > 0 else 1 - y_pred
    b = 0 < y_pred < 1
    if ops.max(y_pred) > 2:
        return a
    elif not ops.any(y_true):
        return b
    return a
""", (("tensor-python-branch", "a = y_pred if"), ("tensor-python-branch", "b = 0 <"),
      ("tensor-python-branch", "if ops.max"), ("tensor-python-branch", "elif not"))),
    Case("sqrt-at-zero-fires", """\
from keras import ops

def distance(a, b):
    return ops.mean(ops.sqrt(ops.sum(ops.square(a - b), axis=-1)))

def rms(y_true, y_pred):
    return ops.mean((y_true - y_pred) ** 2) ** 0.5
""", (("sqrt-at-zero", "ops.sqrt("), ("sqrt-at-zero", "** 0.5"))),
    Case("sqrt-at-zero-silent-with-epsilon", """\
from keras import ops

def distance(a, b):
    return ops.mean(ops.sqrt(ops.sum(ops.square(a - b), axis=-1) + 1e-12))
"""),
    Case("division-by-zero-fires", """\
from keras import ops

def loss(y_true, y_pred):
    r = 1 / y_pred
    mape = ops.abs((y_true - y_pred) / y_true)
    return ops.mean(r + mape + ops.divide(y_true, ops.sum(y_pred)))
""", (("division-by-zero", "r = 1 /"), ("division-by-zero", "mape ="),
      ("division-by-zero", "ops.divide("))),
    Case("division-by-zero-silent-guarded", """\
from keras import ops
from keras import backend as K

EPS = 1e-7

def loss(y_true, y_pred):
    den = ops.sum(y_pred, axis=-1)
    n = ops.cast(ops.shape(y_true)[0], "float32")
    a = 1 / (y_pred + 1e-7)
    b = y_true / ops.maximum(den, 1e-7)
    c = y_true / (den + EPS)
    d = ops.sum(y_true) / n / len(y_true.shape) / 12
    e = ops.divide_no_nan(y_true, y_pred)
    f = y_true / ops.clip(y_pred, K.epsilon(), 1.0)
    return ops.mean(a + b + c + d + e + f)
"""),
    Case("exp-overflow-fires", """\
from keras import ops

def loss(y_true, y_pred):
    a = ops.exp(y_pred)
    return ops.mean(a + ops.exp(y_pred - y_true))
""", (("exp-overflow", "a = ops.exp("), ("exp-overflow", "ops.exp(y_pred - y_true)"))),
    Case("exp-overflow-silent-bounded", """\
import tensorflow as tf
from keras import ops

def loss(y_true, y_pred):
    a = ops.exp(ops.minimum(y_pred, 80))
    b = tf.math.exp(-ops.abs(y_pred))
    c = ops.exp(ops.clip(y_pred - y_true, -20.0, 20.0))
    return ops.mean(a + b + c)
"""),
    Case("unclipped-log-fires-in-layer", """\
import keras
from keras import ops

class LogLayer(keras.layers.Layer):
    def call(self, inputs):
        return ops.log(inputs)
""", (("unclipped-log", "ops.log(inputs)"),)),
    Case("unclipped-log-fires-keras2-backend-and-sigmoid", """\
from keras import ops
from keras import backend as K

def loss(y_true, y_pred):
    a = K.log(y_pred)
    b = ops.log(1 - ops.sigmoid(y_pred))
    return ops.mean(a + b)
""", (("unclipped-log", "a = K.log"), ("unclipped-log", "b = ops.log"))),
    Case("unclipped-log-silent-guards", """\
from keras import ops
from keras import backend as K

EPS = 1e-7

def safe(p):
    return ops.clip(p, 1e-7, 1 - 1e-7)

def loss(y_true, y_pred, eps=1e-6):
    a = K.log(y_pred + K.epsilon())
    b = ops.log(ops.sigmoid(y_pred))
    c = ops.log(ops.maximum(y_pred, EPS)) + ops.log(y_pred + eps)
    d = ops.log(safe(y_pred)) + ops.log(ops.softplus(y_pred)) + ops.log1p(ops.abs(y_pred))
    e = ops.log(ops.where(y_pred > 0, y_pred, 1.0))
    return ops.mean(a + b + c + d + e)
"""),
    Case("where-gradient-trap-fires-on-masked-log", """\
from keras import ops

def loss(y_true, y_pred):
    nll = -ops.log(y_pred)
    return ops.mean(ops.where(y_pred > 0, nll, 0.0))
""", (("where-gradient-trap", "ops.where("),)),
    Case("unclipped-log-fires-through-an-unrelated-where", """\
from keras import ops

def loss(y_true, y_pred):
    nll = -ops.log(y_pred)
    return ops.mean(ops.where(y_true > 0, nll, 0.0))
""", (("unclipped-log", "ops.log(y_pred)"),)),
    Case("unclipped-log-fires-in-loss-factory", """\
from keras import ops

def weighted_bce(pos_weight):
    if pos_weight > 1:
        pos_weight = 1
    def loss(y_true, y_pred):
        return -ops.mean(pos_weight * y_true * ops.log(y_pred))
    return loss
""", (("unclipped-log", "ops.log(y_pred)"),)),
    Case("division-by-zero-fires-in-metric", """\
import keras
from keras import ops

class Ratio(keras.metrics.Metric):
    def update_state(self, y_true, y_pred, sample_weight=None):
        self.total.assign_add(ops.sum(y_true / y_pred))
""", (("division-by-zero", "y_true / y_pred"),)),
    Case("syntax-error-silent", "def broken(:\n    return ops.log(x)\n"),
]


def line_of(code: str, fragment: str) -> int:
    return next(i for i, text in enumerate(code.splitlines(), 1) if fragment in text)


def source(tmp_path: Path, code: str, name: str = "losses.py") -> SourceFile:
    path = tmp_path / name
    path.write_text(code, encoding="utf-8")
    return SourceFile(path=path, text=path.read_text(encoding="utf-8"), objects={})


def run_static(*sources: SourceFile) -> list[Finding]:
    specs = {s.id: s for s in all_checks()}
    suspects = static_suspects(list(sources))
    return [f for cid in SOURCE_CHECKS for f in specs[cid].func(suspects=suspects)]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_source(case: Case, tmp_path):
    found = run_static(source(tmp_path, case.code))
    got = sorted((f.cause, f.location.line) for f in found)
    assert got == sorted((cause, line_of(case.code, frag)) for cause, frag in case.expect)


def test_sparse_penalty_findings_say_what_where_and_how(tmp_path):
    src = source(tmp_path, SPARSE_PENALTY)
    found = run_static(src)
    [branch] = [f for f in found if f.cause == "tensor-python-branch"]
    assert branch.severity is Severity.ERROR and branch.confidence >= 0.9
    assert "OperatorNotAllowedInGraphError" in branch.evidence
    assert "truth value of an array with more than one element is ambiguous" in branch.evidence
    assert "`y_true != 0`" in branch.evidence
    assert "loss = ops.where(y_true != 0, -penalty * ops.sum(" in branch.fix
    assert branch.location.kind == "loss" and branch.location.name == "sparse_penalty_logits"
    assert branch.location.file == str(src.path) and branch.location.op == "if"

    logs = [f for f in found if f.cause == "unclipped-log"]
    assert len(logs) == 2  # one per line, though each line has two logs
    first = logs[0]
    assert first.severity is Severity.WARNING and 0.5 <= first.confidence <= 0.6
    assert first.title == "log() of y_pred without clipping in loss 'sparse_penalty_logits'"
    assert "log(0) = -inf" in first.evidence and "suspect" in first.evidence
    assert "ops.log(1 - y_pred)" in first.evidence  # the other log on the line
    assert "y_pred = ops.clip(y_pred, 1e-7, 1 - 1e-7)" in first.fix
    assert first.measured["function"] == "sparse_penalty_logits"
    assert first.measured["expr"] == "ops.log(y_pred)" and first.measured["arg"] == "y_pred"
    assert first.measured["line"] == first.location.line == 6
    assert all(f.basis == "static" for f in found)
    json.dumps([dict(f.measured) for f in found])
    assert [f.to_dict(i) for i, f in enumerate(found, 1)]


def test_where_trap_is_reported_once_with_a_double_where_fix(tmp_path):
    found = run_static(source(tmp_path, WHERE_TRAP))
    [trap] = found  # no separate division-by-zero / exp-overflow for the ops inside the where
    assert trap.cause == "where-gradient-trap" and trap.severity is Severity.WARNING
    assert trap.confidence > 0.6
    assert trap.location.name == "f" and trap.location.line == 4 and trap.location.op == "where"
    assert trap.fix.splitlines()[1:] == [
        "    small = ops.abs(x) < 0.1",
        "    x_safe = ops.where(small, 1.0, x)   # a harmless value where the branch is not "
        "selected",
        "    ops.where(small, 0.5 + x / 12, 1 / (1 - ops.exp(-x_safe)) - 1 / x_safe)",
    ]
    assert "1.0" in trap.fix.splitlines()[0]
    assert "0 × inf = NaN" in trap.evidence and "`1 / x`" in trap.evidence
    risky = {(r["cause"], r["expr"]) for r in trap.measured["risky"]}
    assert risky == {("division-by-zero", "1 / (1 - ops.exp(-x))"),
                     ("division-by-zero", "1 / x"), ("exp-overflow", "ops.exp(-x)")}
    assert trap.measured["cond"] == "ops.abs(x) < 0.1" and trap.measured["via"] == "where_loss"


def test_masked_log_fix_rewrites_the_statement_that_feeds_the_where(tmp_path):
    code = CASES[[c.id for c in CASES].index("where-gradient-trap-fires-on-masked-log")].code
    [trap] = run_static(source(tmp_path, code))
    assert "y_pred_safe = ops.where(cond, y_pred, 1.0)" in trap.fix  # selected when cond holds
    assert "nll = -ops.log(y_pred_safe)" in trap.fix


def test_locations_name_the_class_for_layers_metrics_and_loss_classes(tmp_path):
    code = """\
import keras
from keras import ops

class LogLayer(keras.layers.Layer):
    def call(self, inputs):
        return ops.log(inputs)

class Ratio(keras.metrics.Metric):
    def update_state(self, y_true, y_pred, sample_weight=None):
        self.total.assign_add(ops.sum(ops.exp(y_pred)))

class Focal(keras.losses.Loss):
    def call(self, y_true, y_pred):
        return ops.sqrt(y_pred)
"""
    found = {f.location.name: f for f in run_static(source(tmp_path, code))}
    assert found["LogLayer"].location.kind == "layer"
    assert found["LogLayer"].title == "log() of inputs without clipping in layer 'LogLayer'"
    assert found["Ratio"].location.kind == "metric" and found["Ratio"].cause == "exp-overflow"
    assert found["Focal"].location.kind == "loss" and found["Focal"].cause == "sqrt-at-zero"
    assert found["Focal"].measured["function"] == "Focal.call"


def test_suggested_guards_are_written_from_the_users_expression(tmp_path):
    code = """\
from keras import ops

def loss(y_true, y_pred):
    return ops.mean(ops.sqrt(ops.square(y_true - y_pred))) + ops.mean(1 / y_pred)
"""
    found = {f.cause: f for f in run_static(source(tmp_path, code))}
    assert "ops.sqrt(ops.square(y_true - y_pred) + 1e-12)" in found["sqrt-at-zero"].fix
    assert "1 / (y_pred + 1e-7)" in found["division-by-zero"].fix


BRANCH_FIXES = [
    ("return", """\
from keras import ops

def loss(y_true, y_pred):
    if ops.mean(y_true) > 0.5:
        return ops.mean(y_pred)
    return ops.mean(1 - y_pred)
""", "return ops.where(ops.mean(y_true) > 0.5, ops.mean(y_pred), ops.mean(1 - y_pred))"),
    ("assign-without-else", """\
import keras

def loss(y_true, y_pred):
    w = 1.0
    if not y_true:
        w = 10.0
    return keras.ops.mean(w * y_pred)
""", "w = keras.ops.where(keras.ops.logical_not(y_true), 10.0, w)"),
    ("and", """\
from keras import ops

def loss(y_true, y_pred):
    keep = y_true > 0 and y_pred > 0
    return ops.mean(ops.cast(keep, "float32"))
""", "ops.logical_and(y_true > 0, y_pred > 0)"),
]


@pytest.mark.parametrize("code,expected", [c[1:] for c in BRANCH_FIXES],
                         ids=[c[0] for c in BRANCH_FIXES])
def test_branch_fixes_are_written_from_the_users_code(code, expected, tmp_path):
    [f] = [f for f in run_static(source(tmp_path, code)) if f.cause == "tensor-python-branch"]
    assert expected in f.fix


def test_a_file_that_does_not_parse_is_skipped_and_others_still_read(tmp_path):
    broken = source(tmp_path, "def broken(:\n", name="broken.py")
    good = source(tmp_path, SPARSE_PENALTY, name="losses.py")
    found = run_static(broken, good)
    assert {f.location.file for f in found} == {str(good.path)}


def test_the_runner_runs_the_source_checks(tmp_path):
    specs = [s for s in all_checks() if s.id in SOURCE_CHECKS]
    assert len(specs) == 3
    inputs = Inputs(config=Config(), sources=[source(tmp_path, SPARSE_PENALTY)])
    findings, results = run_checks(inputs, specs)
    assert {r.check: r.outcome for r in results} == dict.fromkeys(SOURCE_CHECKS, Outcome.RAN)
    assert {f.check for f in findings} == {"source-python-branch", "source-unsafe-math"}

    _, results = run_checks(Inputs(config=Config()), specs)
    assert {r.outcome for r in results} == {Outcome.NOT_APPLICABLE}


def test_load_all_registers_the_source_checks():
    from nandoc.checks import load_all

    load_all()
    specs = {s.id: s for s in all_checks()}
    for cid in SOURCE_CHECKS:
        assert specs[cid].needs == ("suspects",) and specs[cid].title
    assert set(specs["source-unsafe-math"].causes) == {
        "unclipped-log", "division-by-zero", "sqrt-at-zero", "exp-overflow"}

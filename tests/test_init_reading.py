"""`nandoc init` decides which .py files to list under custom_objects by READING them (ast),
never importing them, and never lists a file that runs code when imported (a training script).

The rule's cases run in-process on real files in tmp folders; one end-to-end test runs the real
CLI (`nandoc init`, then `nandoc check -c` on what init wrote) on two folders whose training
script writes a marker file and exits when imported, and proves the marker never appears.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from textwrap import dedent

import pytest

from nandoc.init import plan, summary, write_config
from nandoc.init.pyfiles import MAX_BYTES, read_folder, read_python
from tests.conftest import healthy_rows, write_csv

ENV = {**os.environ, "NO_COLOR": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
MARKER = "IMPORTED.txt"
# A training script: defines the loss the model needs, then trains at import. Importing it
# writes MARKER next to it and exits, so any import of it is seen.
TRAIN_PY = dedent(f"""\
    import pathlib
    import sys

    import keras

    def sparse_loss(y_true, y_pred):
        return keras.ops.mean(keras.losses.binary_crossentropy(y_true, y_pred))

    model = keras.Sequential([keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss=sparse_loss)
    pathlib.Path(__file__).with_name({MARKER!r}).write_text("train.py was imported")
    sys.exit("train.py was imported")
    model.fit([[0.0, 0.0, 0.0]], [0.0], epochs=1)
""")
LOSSES_PY = dedent("""\
    \"\"\"The loss, in a file of its own.\"\"\"
    import keras

    EPS = 1e-7


    def sparse_loss(y_true, y_pred):
        return keras.ops.mean(keras.losses.binary_crossentropy(y_true, y_pred))
""")


def sparse_loss(y_true, y_pred):  # saved by name in the model's config
    import keras

    return keras.ops.mean(keras.losses.binary_crossentropy(y_true, y_pred))


@pytest.fixture(scope="module")
def custom_model(tmp_path_factory) -> Path:
    """A tiny model compiled with the custom loss `sparse_loss`, saved once."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss=sparse_loss)
    path = tmp_path_factory.mktemp("custom") / "model.keras"
    model.save(path)
    return path


def _folder(d: Path, model: Path, **py: str) -> Path:
    (d / "model.keras").write_bytes(model.read_bytes())
    write_csv(d / "data.csv", ["a", "b", "c", "label"], healthy_rows(40))
    for name, text in py.items():
        (d / f"{name}.py").write_text(text)
    return d


def _one(tmp_path: Path, text: str, name: str = "f.py"):
    (tmp_path / name).write_text(dedent(text))
    return read_python(tmp_path / name)


# -- the rule: what counts as work at import ---------------------------------------------------

SAFE = [
    ("docstring-imports-defs", '''
        """Losses."""
        from __future__ import annotations
        import numpy as np
        import keras
        from keras import ops, layers
        EPS: float = 1e-7
        CLASSES = ["a", "b"]
        WEIGHTS = {"a": 1.0, "b": 2.0}
        def loss(y, p, eps=EPS):
            print("only when called")
            return ops.mean(p)
        class Scale(layers.Layer):
            tracker = keras.metrics.Mean(name="t")
            def call(self, x):
                return x * 2
    '''),
    ("cheap-library-calls", '''
        import logging
        import numpy as np
        import tensorflow as tf
        from tensorflow import keras
        log = logging.getLogger(__name__)
        EPS = np.finfo(np.float32).eps
        K = keras.backend.epsilon()
        bce = keras.losses.BinaryCrossentropy(from_logits=True)
        SCALE = tf.constant(2.0)
        identity = lambda y, p: print(p)
    '''),
    ("pure-methods-and-setup", '''
        import os
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        LOG_LOSS = "def loss(y, p): return log(p)"
        CLIPPED = LOG_LOSS.replace("log(p)", "log(clip(p))")
        COLUMNS = ", ".join(["a", "b"]).upper()
        import re
        from keras.utils import to_categorical
        PATTERN = re.compile(r"loss_\\d+")
        ONE_HOT = to_categorical([0, 1, 2])
    '''),
    ("guarded-blocks", '''
        import sys
        from typing import TYPE_CHECKING
        try:
            import tensorflow as tf
        except ImportError:
            raise ImportError("install tensorflow")
        if TYPE_CHECKING:
            from train import Model
        if sys.version_info >= (3, 11):
            FAST = True
        def main():
            pass
        if __name__ == "__main__":
            model = build()
            model.fit(x, y)
            main()
    '''),
    ("registration", '''
        import warnings
        import keras
        from keras.saving import get_custom_objects
        warnings.filterwarnings("ignore")
        def focal(y, p):
            return p
        get_custom_objects()["focal_alias"] = focal
        keras.saving.get_custom_objects().update({"focal2": focal})
        keras.saving.register_keras_serializable(package="p")(focal)
        @keras.saving.register_keras_serializable(package="my", name="Focal")
        class FocalLoss(keras.losses.Loss):
            pass
    '''),
]


@pytest.mark.parametrize("text", [t for _, t in SAFE], ids=[i for i, _ in SAFE])
def test_files_that_only_define_things_do_no_work(tmp_path, text):
    f = _one(tmp_path, text)
    assert f.problem == "" and f.work == ""


WORK = [
    ("fit-call", "import keras\nmodel = keras.Sequential([])\nmodel.fit(x, y, epochs=3)\n",
     "line 3: model.fit(...)"),
    ("main-call", "def main():\n    pass\nmain()\n", "line 3: main(...)"),
    ("print", "print('hello')\n", "line 1: print(...)"),
    ("user-function", "def build_model():\n    pass\nmodel = build_model()\n",
     "line 3: model = build_model(...)"),
    ("read-csv", "import pandas as pd\ndf = pd.read_csv('d.csv')\n",
     "line 2: df = pd.read_csv(...)"),
    ("np-load", "import numpy as np\nx = np.load('x.npy')['a']\n", "line 2: np.load(...)"),
    ("load-model", "from keras.models import load_model\nm = load_model('m.keras')\n",
     "line 2: m = load_model(...)"),
    ("keras-load-model", "import keras\nm = keras.models.load_model('m.keras')\n",
     "line 2: m = keras.models.load_model(...)"),
    ("tf-data", "import tensorflow as tf\nds = tf.data.Dataset.from_tensor_slices([1])\n",
     "line 2: ds = tf.data.Dataset.from_tensor_slices(...)"),
    ("open", "text = open('notes.txt').read()\n",
     "line 1: text = open('notes.txt').read(...)"),
    ("with", "with open('x') as fh:\n    pass\n", "line 1: a with block (with open('x'):)"),
    ("for", "for i in range(3):\n    pass\n", "line 1: a for loop (for i in ...)"),
    ("while", "while False:\n    pass\n", "line 1: a while loop"),
    ("raise", "raise SystemExit('no')\n", "line 1: raise SystemExit('no')"),
    ("class-body", "class A:\n    x = train()\n", "line 2: x = train(...)"),
    ("main-guard-else", "if __name__ == '__main__':\n    pass\nelse:\n    run()\n",
     "line 4: run(...)"),
    ("if-test", "if ready():\n    pass\n", "line 1: ready(...)"),
    ("inside-try", "try:\n    fit()\nexcept Exception:\n    pass\n", "line 2: fit(...)"),
    ("registration-argument", "import keras\nkeras.saving.get_custom_objects().update("
     "{'a': build()})\n", "line 2: build(...)"),
    ("http-get", "import requests\nr = requests.get('http://example.com')\n",
     "line 2: r = requests.get(...)"),
    ("method-on-work", "NAME = load_name().replace('a', 'b')\n", "line 1: load_name(...)"),
    ("keras-dataset", "import keras\n(x, y), _ = keras.datasets.mnist.load_data()\n",
     "line 2: ((x, y), _) = keras.datasets.mnist.load_data(...)"),
    ("pretrained", "from keras.applications import ResNet50\nnet = ResNet50()\n",
     "line 2: net = ResNet50(...)"),
    ("lambda-default", "f = lambda y, e=compute(): y\n", "line 1: compute(...)"),
]


@pytest.mark.parametrize("text, where", [(t, w) for _, t, w in WORK],
                         ids=[i for i, _, _ in WORK])
def test_code_that_runs_at_import_is_work_with_its_line(tmp_path, text, where):
    assert _one(tmp_path, text).work == where


def test_the_names_a_file_defines(tmp_path):
    f = _one(tmp_path, dict(SAFE)["registration"])
    assert {"focal", "focal_alias", "focal2", "FocalLoss", "Focal"} <= f.names
    g = _one(tmp_path, dict(SAFE)["guarded-blocks"], "g.py")
    assert "main" in g.names and "model" not in g.names  # the __main__ block is not run
    h = _one(tmp_path, "try:\n    from x import y\nexcept ImportError:\n    def y():\n"
                       "        pass\nscale = make_scale(2)\n", "h.py")
    assert h.names == {"y", "scale"}


@pytest.mark.parametrize("content, reason", [
    (b"def broken(:\n    pass\n", "does not parse as Python (SyntaxError at line 1"),
    (b"x = 1\x00\n", "null bytes"),
    (b"x = '\xff\xfe'\n", "does not parse as Python"),
    (b"# -*- coding: no-such-codec -*-\nx = 1\n", "does not parse as Python"),
])
def test_a_file_that_does_not_parse_is_left_out_with_the_reason(tmp_path, content, reason):
    (tmp_path / "bad.py").write_bytes(content)
    f = read_python(tmp_path / "bad.py")
    assert reason in f.problem and f.names == frozenset() and f.work == ""


def test_a_declared_encoding_is_honoured_and_a_huge_file_is_left_out(tmp_path):
    (tmp_path / "latin.py").write_bytes(b"# -*- coding: latin-1 -*-\nname = '\xe9'\n"
                                        b"def loss(y, p):\n    return p\n")
    assert read_python(tmp_path / "latin.py").names == {"name", "loss"}
    (tmp_path / "huge.py").write_bytes(b"def loss(y, p):\n    return p\n"
                                       + b"#" * (MAX_BYTES + 10))
    f = read_python(tmp_path / "huge.py")
    assert "MB, too big" in f.problem and f.names == frozenset()


def test_a_file_importing_a_sibling_that_works_does_work(tmp_path):
    (tmp_path / "train.py").write_text("def loss(y, p):\n    return p\nmain()\n")
    (tmp_path / "losses.py").write_text("import keras\nfrom train import loss\n")
    (tmp_path / "chain.py").write_text("from . import losses\n")
    (tmp_path / "clean.py").write_text("import keras\nimport helpers\n")
    (tmp_path / "helpers.py").write_text("def helper():\n    pass\n")
    (tmp_path / "sub.py").mkdir()  # a folder named like a module is not a file
    work = {f.path.name: f.work for f in read_folder(tmp_path)}
    assert work == {
        "train.py": "line 3: main(...)",
        "losses.py": "line 2: import train, and train.py runs code when imported",
        "chain.py": "line 1: import losses, and losses.py runs code when imported",
        "clean.py": "", "helpers.py": ""}


# -- what init writes --------------------------------------------------------------------------


def test_a_training_script_that_defines_the_loss_is_named_not_listed(tmp_path, custom_model):
    folder = _folder(tmp_path, custom_model, train=TRAIN_PY,
                     broken="def x(:\n", plots="import matplotlib\nplot()\n")
    path, p = write_config(folder)
    text = path.read_text()
    raw = tomllib.loads(text)
    assert "custom_objects" not in raw["model"] and p.custom_objects == ()
    assert p.custom_missing == ("sparse_loss",)
    assert ("# train.py defines sparse_loss but runs code when imported (line 10: "
            "model.compile(...)); move sparse_loss into a file of its own, or put that code "
            "under `if __name__ == \"__main__\":`, then list it in custom_objects.") in text
    assert "the only files here that define it run code when imported, so custom_objects " \
           "is left unset" in text
    assert "# broken.py is not listed: it does not parse as Python (SyntaxError" in text
    assert '["plots.py"]' not in text and '["train.py"]' not in text
    said = summary(p, path)
    assert "NONE LISTED for sparse_loss" in said and "train.py defines sparse_loss" in said
    assert "then run: nandoc check" in said and "Check the guesses" not in said
    assert not (folder / MARKER).exists()


def test_no_file_defines_the_name_so_nothing_is_listed(tmp_path, custom_model):
    folder = _folder(tmp_path, custom_model, utils="def helper():\n    return 1\n")
    p = plan(folder)
    assert p.custom_objects == () and p.custom_missing == ("sparse_loss",)
    assert "no .py file here defines it, so custom_objects is left unset" in p.custom_rule
    assert [f.path.name for f in p.unused_python] == ["utils.py"]


def test_odd_file_names_stay_inside_their_comments(tmp_path, custom_model):
    folder = _folder(tmp_path, custom_model)
    (folder / "run\nme.py").write_text(TRAIN_PY)
    (folder / "bad\rname.py").write_text("def (:\n")
    text = write_config(folder)[0].read_text()
    assert "custom_objects" not in tomllib.loads(text)["model"]  # still valid TOML
    assert "# run\\nme.py defines sparse_loss but runs code" in text
    assert "# bad\\rname.py is not listed" in text


def test_the_safe_file_is_listed_and_the_script_beside_it_is_not(tmp_path, custom_model):
    folder = _folder(tmp_path, custom_model, losses=LOSSES_PY,
                     train="from losses import sparse_loss\nmodel.fit(x)\n")
    path, p = write_config(folder)
    text = path.read_text()
    assert tomllib.loads(text)["model"]["custom_objects"] == ["losses.py"]
    assert p.custom_missing == () and "Check the guesses" in summary(p, path)
    assert ("# train.py: a Python file here; the model does not name anything in it, and it "
            "runs code when imported (line 2: model.fit(...)).") in text


# -- end to end: the real CLI never imports the training script -------------------------------


def _run(folder: Path) -> list[subprocess.CompletedProcess]:
    done = []
    for args in (["init", str(folder)], ["check", "-c", str(folder / "nandoc.toml"),
                                         "--steps", "0"]):
        done.append(subprocess.run([sys.executable, "-m", "nandoc", *args], env=ENV,
                                   cwd=folder, capture_output=True, text=True, timeout=300))
    return done


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory, custom_model):
    """Two folders, each with a training script that writes MARKER when imported: in one the
    script alone defines the loss, in the other losses.py does. `init` then `check` in each."""
    alone = _folder(tmp_path_factory.mktemp("alone"), custom_model, train=TRAIN_PY)
    split = _folder(tmp_path_factory.mktemp("split"), custom_model, losses=LOSSES_PY,
                    train="from losses import sparse_loss\n" + TRAIN_PY)
    with ThreadPoolExecutor(2) as pool:
        runs = dict(zip(("alone", "split"), pool.map(_run, (alone, split)), strict=True))
    return {"alone": (alone, runs["alone"]), "split": (split, runs["split"])}


def test_cli_init_and_check_never_import_the_training_script(cli_runs):
    folder, (init, check) = cli_runs["alone"]
    assert init.returncode == 0, init.stderr
    assert "NONE LISTED for sparse_loss" in init.stdout
    assert "train.py defines sparse_loss but runs code when imported (line 10" in init.stdout
    text = (folder / "nandoc.toml").read_text()
    assert "# train.py defines sparse_loss but runs code when imported" in text
    assert "custom_objects" not in tomllib.loads(text)["model"]
    # check cannot load the model without the loss: it says so, and imports nothing
    assert check.returncode == 2, check.stdout + check.stderr
    assert "custom object 'sparse_loss'" in check.stderr and "Traceback" not in check.stderr
    assert not (folder / MARKER).exists()


def test_cli_check_imports_the_loss_file_and_not_the_script(cli_runs):
    folder, (init, check) = cli_runs["split"]
    assert init.returncode == 0, init.stderr
    raw = tomllib.loads((folder / "nandoc.toml").read_text())
    assert raw["model"]["custom_objects"] == ["losses.py"]
    assert check.returncode == 0, check.stdout + check.stderr
    assert not (folder / MARKER).exists()
    assert not (folder / "__pycache__").exists()

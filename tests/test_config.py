"""nandoc.toml parsing and validation: every message is asserted as the user reads it."""

from __future__ import annotations

from pathlib import Path

import pytest

from nandoc.config import Config, load_config, parse_config, with_overrides
from nandoc.errors import ConfigError

ORIGIN = Path("proj/nandoc.toml")


def test_full_schema_parses_and_paths_are_relative_to_the_file():
    cfg = parse_config(
        """
        [model]
        path = "model.keras"
        custom_objects = ["losses.py"]
        [data]
        path = "data.csv"
        target = "label"
        features = ["a", "b"]
        validation_split = 0.2
        [data.window]
        length = 30
        stride = 2
        label = "last"
        [train]
        batch_size = 16
        epochs = 3
        shuffle = true
        seed = 7
        optimizer = "sgd"
        learning_rate = 0.01
        clipnorm = 1
        """, ORIGIN)
    assert cfg.model_path == Path("proj/model.keras")
    assert cfg.custom_objects == (Path("proj/losses.py"),)
    assert cfg.data_path == Path("proj/data.csv")
    assert cfg.target == ("label",) and cfg.features == ("a", "b")
    assert cfg.window.length == 30 and cfg.window.stride == 2
    assert cfg.train.batch_size == 16 and cfg.train.clipnorm == 1.0
    assert isinstance(cfg.train.clipnorm, float)


def test_target_may_be_a_list():
    cfg = parse_config('[data]\ntarget = ["y1", "y2"]\n', ORIGIN)
    assert cfg.target == ("y1", "y2")


@pytest.mark.parametrize(
    "text, message",
    [
        ("[modle]\npath='m.keras'\n", "unknown section(s) [modle]"),
        ("[model]\npaht='m.keras'\n", "[model] has an unknown key 'paht'"),
        ("[train]\nbatch_size = -4\n", "[train] batch_size is -4; it must be a positive integer"),
        ("[train]\nbatch_size = 'big'\n", "[train] batch_size must be an integer, not 'big'"),
        ("[train]\nshuffle = 1\n", "[train] shuffle must be true or false, not 1"),
        ("[train]\nepochs = true\n", "[train] epochs must be an integer, not True"),
        ("[data]\nvalidation_split = 1.5\n", "validation_split is 1.5; it must be at least 0"),
        ("[data]\nvalidation_split = 0.2\nvalidation_path = 'v.csv'\n", "keep one of them"),
        ("[data.window]\nlength = 0\n", "[data.window] length is 0"),
        ("[data.window]\nlabel = 'first'\n", "nandoc supports \"last\""),
        ("[train]\nlearning_rate = 0\n", "learning_rate is 0.0; it must be positive"),
        ("[model\npath='x'\n", "is not valid TOML"),
        ("[data]\nfeatures = [1, 2]\n", "[data] features must be a list of non-empty strings"),
    ],
    ids=["unknown-section", "unknown-key", "negative-batch", "batch-type", "bool-type",
         "bool-as-int", "split-range", "split-and-path", "window-length", "window-label",
         "lr-zero", "bad-toml", "features-type"],
)
def test_bad_config_is_one_clear_error(text, message):
    with pytest.raises(ConfigError) as err:
        parse_config(text, ORIGIN)
    assert message in str(err.value)
    assert "\n" not in str(err.value).strip()


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")


def test_default_config_is_read_from_cwd(tmp_path, monkeypatch):
    (tmp_path / "nandoc.toml").write_text("[data]\npath = 'd.csv'\ntarget = 'y'\n")
    monkeypatch.chdir(tmp_path)
    assert load_config(None).data_path == tmp_path / "d.csv"


def test_no_config_anywhere_is_empty(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_config(None) == Config()


def test_command_line_overrides_the_file():
    cfg = parse_config("[model]\npath='a.keras'\n[data]\npath='a.csv'\ntarget='y'\n", ORIGIN)
    out = with_overrides(cfg, model=Path("b.keras"), target="t1, t2", seed=3, unsafe=True)
    assert out.model_path == Path("b.keras") and out.data_path == Path("proj/a.csv")
    assert out.target == ("t1", "t2") and out.train.seed == 3 and out.unsafe

"""`nandoc replay` through the real CLI: the JSON contract, the plot, and Ctrl-C."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

from tests.conftest import SAMPLES
from tests.test_cli import ENV, nandoc


def test_replay_where_trap_sample_json_and_plot(tmp_path):
    plot = tmp_path / "replay.png"
    res = nandoc("replay", "--config", SAMPLES / "where_trap_loss" / "nandoc.toml",
                 "--format", "json", "--plot", plot)
    assert res.returncode == 1, res.stderr
    doc = json.loads(res.stdout)
    assert doc["command"] == "replay"
    first = doc["first_nonfinite"]
    assert {k: first[k] for k in ("where", "op", "line")} == {
        "where": "backward", "op": "where", "line": 15}  # the epoch depends on the CPU
    top = doc["findings"][0]
    assert top["cause"] == "where-gradient-trap"
    assert top["verified_fix"]["nan_free"] is True and top["verified_fix"]["steps_ran"] > 0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_ctrl_c_prints_what_was_found_and_exits_130(tmp_path):
    out = tmp_path / "partial.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "nandoc", "replay", "--config",
         str(SAMPLES / "healthy" / "nandoc.toml"), "--epochs", "100000", "--format", "json",
         "--output", str(out)],
        env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(25)  # past the TensorFlow import and the checks, into training
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    doc = json.loads(out.read_text())
    assert doc["replay"]["stopped_by"] == "interrupted" and doc["replay"]["steps_ran"] > 0

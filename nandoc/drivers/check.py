"""`nandoc check`, the driver: the inputs the config names, every check, one Report."""

from __future__ import annotations

import time

from nandoc.config import Config
from nandoc.core.report import Report
from nandoc.drivers.files import load_inputs
from nandoc.engine import diagnosis


def check(cfg: Config) -> Report:
    """Run every applicable check on the inputs `cfg` names."""
    started = time.perf_counter()
    inputs = load_inputs(cfg)
    loaded = time.perf_counter()
    d = diagnosis.examine(inputs, started)
    done = time.perf_counter()
    return diagnosis.build_report(
        d, "check",
        timings={"load_s": round(loaded - started, 3), "checks_s": round(done - loaded, 3),
                 "total_s": round(done - started, 3)})

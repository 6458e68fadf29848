"""`nandoc check`, the driver: the inputs the config names, every check, then a short watched
burst of training in memory from the saved weights, so that a NaN, a divergence or an
explosion within the first steps is caught and explained too. One Report."""

from __future__ import annotations

import time
from typing import Any

from nandoc.config import Config
from nandoc.core.report import Report
from nandoc.drivers.files import load_inputs
from nandoc.drivers.training import observe, train_watched, trainable
from nandoc.engine import diagnosis
from nandoc.engine.localise import failing_batch

BURST_STEPS = 50
BURST_SECONDS = 5.0  # after the first (tracing) step


def check(cfg: Config, *, steps: int = BURST_STEPS, child_process: bool = False) -> Report:
    """Run every applicable check on the inputs `cfg` names, then `steps` watched training
    steps (at most about BURST_SECONDS; 0 skips the burst). `child_process`: big data may be
    scanned in a child process (`files.load_inputs`; the command line's choice)."""
    started = time.perf_counter()
    inputs = load_inputs(cfg, child_process=child_process)
    loaded = time.perf_counter()
    d = diagnosis.examine(inputs, started)
    checked = time.perf_counter()
    extra: dict[str, Any] = {}
    step_error = None
    why_not = "the burst was skipped (--steps 0)" if steps <= 0 else trainable(inputs)
    if why_not is None:
        per_epoch = max(-(-inputs.data.train.n // cfg.train.batch_size), 1)
        training = train_watched(inputs, epochs=max(1, -(-steps // per_epoch)),
                                 max_steps=steps, time_limit_s=BURST_SECONDS, seen_first=True)
        observe(d, inputs, training)
        log = training.log
        step_error = log.error
        extra["burst"] = {"steps_limit": steps, "steps_ran": log.steps_ran,
                          "stopped_by": log.stopped_by}
        if training.snapshot:
            extra["snapshot"] = training.snapshot
        if training.from_pass:  # the first step's layer pass was already non-finite
            extra["burst"]["seen_in"] = "the first step's layer pass"
        if log.error:
            extra["burst"]["error"] = log.error
        if training.failure is not None:
            extra["failing_batch"] = training.failing_batch()
    else:
        inputs.unavailable["steplog"] = why_not
    if "failing_batch" not in extra:  # no training NaN: the first non-finite model pass
        lp = next((p for p in inputs.optional("passes", ()) if p.first_nonfinite is not None),
                  None)
        if lp is not None:
            extra["failing_batch"] = failing_batch(lp, None, None)
    done = time.perf_counter()
    return diagnosis.build_report(
        d, "check", extra=extra, step_error=step_error,
        timings={"load_s": round(loaded - started, 3), "checks_s": round(checked - loaded, 3),
                 "burst_s": round(done - checked, 3), "total_s": round(done - started, 3)})


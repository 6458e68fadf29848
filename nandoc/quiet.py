"""Keep TensorFlow's native start-up chatter (absl, oneDNN, CUDA probing) off the terminal.

TF 2.21 logs through absl before TF_CPP_MIN_LOG_LEVEL is read, straight to file descriptor 2,
so Python-level filters cannot stop it. While a heavy phase runs, fd 2 points at a temporary
file; its text is kept so that `-v` or a crash can still show it.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator


class Captured:
    text: str = ""


_ABSL_PREFIX = re.compile(r"^[IWEF]\d{4} [\d:.]+\s+\d+ ")  # I0000 00:00:1796.0  3532 port.cc...


def distinct_lines(text: str) -> str:
    """The log with each message once: TensorFlow's shared libraries each print the same
    start-up lines (oneDNN, CUDA probing, the absl warning), differing only in the timestamp."""
    seen: set[str] = set()
    out = []
    for line in text.splitlines():
        key = _ABSL_PREFIX.sub("", line)
        if key.strip() and key in seen:
            continue
        seen.add(key)
        out.append(line)
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


@contextlib.contextmanager
def native_stderr_captured(enabled: bool = True) -> Iterator[Captured]:
    captured = Captured()
    if not enabled:
        yield captured
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, ValueError, OSError):  # no real stderr (e.g. under a test runner)
        yield captured
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), fd)
        try:
            yield captured
        finally:
            sys.stderr.flush()
            os.dup2(saved, fd)
            os.close(saved)
            sink.seek(0)
            captured.text = distinct_lines(sink.read().decode("utf-8", errors="replace"))


@contextlib.contextmanager
def keras_call_warnings() -> Iterator[None]:
    """Silence the warning Keras 3 gives when nandoc calls a model whose input is named
    (`keras.Input(name=...)`) with a bare array: nandoc's own calls, not the user's code."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"The structure of `inputs` doesn't match",
                                category=UserWarning)
        yield

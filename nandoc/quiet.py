"""Keep TensorFlow's native start-up chatter (absl, oneDNN, CUDA probing) off the terminal.

TF 2.21 logs through absl before TF_CPP_MIN_LOG_LEVEL is read, straight to file descriptor 2,
so Python-level filters cannot stop it. While a heavy phase runs, fd 2 points at a temporary
file; its text is kept so that `-v` or a crash can still show it.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator


class Captured:
    text: str = ""


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
            captured.text = sink.read().decode("utf-8", errors="replace")


@contextlib.contextmanager
def keras_call_warnings() -> Iterator[None]:
    """Silence the warning Keras 3 gives when nandoc calls a model whose input is named
    (`keras.Input(name=...)`) with a bare array: nandoc's own calls, not the user's code."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"The structure of `inputs` doesn't match",
                                category=UserWarning)
        yield

"""A model's training state (its variables and its optimizer's), copied and put back: on the host
(replay's initial and failure states), or on the device (the callback's last finite weights).
The watched step keeps its own in-graph copy of the same variables."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from nandoc.analysis.remedies import optimizer_like
from nandoc.config import TrainConfig


def state_variables(model: Any) -> list[Any]:
    """Everything a restore must put back: the model's variables and the optimizer's state."""
    opt = getattr(model, "optimizer", None)
    return list(model.variables) + (list(opt.variables) if opt is not None else [])


# The step's own gradients, activations and optimizer temporaries need room next to the
# snapshot: it is taken only when it fills at most this fraction of the free memory.
SNAPSHOT_SHARE = 0.5
# On a CPU the snapshot takes host memory next to the model: beyond this size (weights and
# Adam's two moments of a ~20 M-parameter model) only the statistics are copied ("partial").
# A full copy would be 3x the weights with Adam: as much again as the model being checked.
CPU_FULL_SNAPSHOT_BYTES = 256 * 2**20


@dataclass(frozen=True)
class SnapshotPlan:
    """Where the watched step keeps the copy it restores after a non-finite step: "device" (in
    the compiled step, every step), "host" (a numpy copy before every step: a GPU too full
    for a second copy), "partial" (a big model on a CPU: only the variables the forward pass
    changes, BatchNormalization's statistics and the seed states, are copied in the step; a
    non-finite gradient is never applied and a non-finite statistic is undone, but a
    non-finite update computed from finite gradients is not) or "skipped" (no room anywhere:
    a non-finite update is still never applied, but a non-finite BatchNormalization statistic
    or update is not undone)."""

    where: str
    bytes: int  # the size of one copy
    free: int | None  # bytes free where it was measured (None: unknown, taken as enough)
    why: str

    def as_extra(self) -> dict[str, Any]:
        """`report.extra["snapshot"]`."""
        return {"where": self.where, "bytes": self.bytes, "why": self.why}


def state_bytes(variables: list[Any]) -> int:
    """The size of a copy of `variables`, from their shapes and dtypes (nothing is read)."""
    total = 0
    for v in variables:
        size = int(np.prod([int(d) for d in v.shape])) if len(v.shape) else 1
        total += size * np.dtype(_np_dtype(v.dtype)).itemsize
    return total


def _np_dtype(dtype: Any) -> Any:
    name = getattr(dtype, "name", None) or str(dtype)
    return {"bfloat16": np.float16, "resource": np.int64}.get(name, name)


def host_available() -> int | None:
    """MemAvailable from /proc/meminfo, in bytes (None where there is no such file)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def device_available(device: str) -> int | None:
    """Free memory of a GPU in bytes: its total (nvidia-smi) less what TensorFlow holds
    (`get_memory_info`); None when unknown. For "CPU" the host's available memory."""
    if not device.upper().startswith("GPU"):
        return host_available()
    import shutil
    import subprocess

    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    index = device.split(":")[-1] if ":" in device else "0"
    try:
        out = subprocess.run([smi, "--query-gpu=memory.free", "--format=csv,noheader,nounits",
                              "-i", index], capture_output=True, text=True, timeout=10,
                             check=True).stdout
        return int(float(out.strip().splitlines()[0]) * 2**20)
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def plan_snapshot(variables: list[Any], *, device: str = "CPU", device_free: int | None = None,
                  host_free: int | None = None, measure: bool = True,
                  statistics: list[Any] | None = None) -> SnapshotPlan:
    """Decide where the step's snapshot of `variables` goes. `device_free` / `host_free` are
    budgets in bytes; left None they are measured (unless `measure` is False: then unknown,
    which counts as room enough). On a CPU the device is the host: a host copy would take
    the same memory, so it is the device copy, the statistics only (`statistics`: the
    non-trainable variables, when the state is over CPU_FULL_SNAPSHOT_BYTES), or none."""
    need = state_bytes(variables)
    on_gpu = device.upper().startswith("GPU")
    if device_free is None and measure:
        device_free = device_available(device)
    fits = device_free is None or need <= SNAPSHOT_SHARE * device_free
    if not on_gpu and statistics is not None and need > CPU_FULL_SNAPSHOT_BYTES:
        small = state_bytes(statistics)
        if device_free is None or small <= SNAPSHOT_SHARE * device_free:
            stats = (f"only the statistics ({_mib(small)}) are copied" if small else
                     "the model has no statistics to copy")
            return SnapshotPlan(
                "partial", small, device_free,
                f"a full copy of the weights and optimizer state would take {_mib(need)} more "
                f"host memory (over {_mib(CPU_FULL_SNAPSHOT_BYTES)}); {stats}: a non-finite "
                "gradient is still never applied and a non-finite statistic is undone, but a "
                "non-finite update computed from finite gradients is not")
    if fits:
        why = ("free memory unknown" if device_free is None else
               f"{_mib(need)} fits in {_mib(device_free)} free on {device}")
        return SnapshotPlan("device", need, device_free, why)
    if on_gpu:
        if host_free is None and measure:
            host_free = host_available()
        if host_free is not None and need <= SNAPSHOT_SHARE * host_free:
            return SnapshotPlan("host", need, host_free,
                                f"{_mib(need)} does not fit next to training in {_mib(device_free)}"
                                f" free on {device}; copied to the host before each step")
    return SnapshotPlan("skipped", need, device_free,
                        f"{_mib(need)} does not fit next to training in {_mib(device_free)} free "
                        f"on {device}: a non-finite update is still never applied, but a "
                        "non-finite normalization statistic or update is not undone")


def _mib(n: int) -> str:
    return f"{n / 2**20:.0f} MiB" if n >= 2**20 else f"{max(1, round(n / 1024))} KiB"


def snapshot(model: Any) -> list[np.ndarray]:
    """A host copy of the model's state."""
    return [np.array(v.numpy(), copy=True) for v in state_variables(model)]


# A kept state bigger than this is written to a temporary file rather than held in memory.
SPILL_BYTES = 128 * 2**20


class KeptState:
    """The model's state as it was when kept, to restore later (the state training started
    from, for the re-runs a check or a fix asks for). Small states are held in memory; a big
    one (over `spill_bytes`) is written, one variable at a time, to a temporary file that is
    deleted with this object, so a 50 M-parameter model's weights and Adam moments (600 MB)
    cost no memory while training runs. Iterating yields the arrays in `state_variables`
    order, one at a time."""

    def __init__(self, model: Any, spill_bytes: int = SPILL_BYTES):
        import os
        import tempfile
        import weakref

        variables = state_variables(model)
        self.n = len(variables)
        self.values: list[np.ndarray] | None = None
        self.path: str | None = None
        if state_bytes(variables) <= spill_bytes:
            self.values = snapshot(model)
            return
        fd, path = tempfile.mkstemp(prefix="nandoc-state-", suffix=".npy")
        try:
            with os.fdopen(fd, "wb") as fh:
                for v in variables:
                    np.save(fh, np.asarray(v.numpy()), allow_pickle=False)
        except OSError:  # no room on disk: held in memory after all
            _unlink(path)
            self.values = snapshot(model)
            return
        self.path = path
        self._cleanup = weakref.finalize(self, _unlink, path)

    @property
    def where(self) -> str:
        return "memory" if self.values is not None else "file"

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        if self.values is not None:
            yield from self.values
            return
        assert self.path is not None
        with open(self.path, "rb") as fh:
            for _ in range(self.n):
                yield np.load(fh, allow_pickle=False)


def _unlink(path: str) -> None:
    import os

    try:
        os.unlink(path)
    except OSError:
        pass


def restore(model: Any, values: Any) -> None:
    """Put back a state: a list of arrays (`snapshot`) or a KeptState, in state order."""
    for var, value in zip(state_variables(model), values):
        var.assign(value)


class DeviceSnapshot:
    """A copy of the model's state kept on its device, taken by one compiled call (rebuilt
    when the set of variables changes: an optimizer builds its state in the first step)."""

    def __init__(self) -> None:
        self._copy: Any = None
        self._ids: list[int] = []
        self.values: list[Any] | None = None
        self.variables: list[Any] = []

    def take(self, model: Any) -> None:
        import tensorflow as tf

        variables = state_variables(model)
        if [id(v) for v in variables] != self._ids:
            self._copy = tf.function(lambda: [tf.identity(v) for v in variables])
            self._ids = [id(v) for v in variables]
        self.values = self._copy()
        self.variables = variables

    def complete(self, model: Any) -> bool:
        """Whether the copy holds every variable the model has now."""
        return self.values is not None and len(self.variables) == len(state_variables(model))

    def restore(self) -> bool:
        if self.values is None:
            return False
        for v, value in zip(self.variables, self.values, strict=True):
            v.assign(value)
        return True

    def clear(self) -> None:
        self.values, self.variables = None, []


def copy_optimizer_state(src: Any, dst: Any, variables: list[Any]) -> None:
    """Carry Adam moments and the iteration count over when the shapes line up; never the
    learning rate, which Keras 3 keeps as a variable and a fix may have changed."""
    dst.build(variables)
    for a, b in zip(src.variables, dst.variables):
        name = getattr(b, "path", None) or b.name
        if "learning_rate" in name:
            continue
        if tuple(a.shape) == tuple(b.shape):
            b.assign(a)


def apply_overrides(model: Any, train: TrainConfig) -> bool:
    """[train] optimizer / learning_rate / clipnorm override what the model was compiled with."""
    if train.optimizer is None and train.learning_rate is None and train.clipnorm is None:
        return False
    opt = optimizer_like(model.optimizer, learning_rate=train.learning_rate,
                         clipnorm=train.clipnorm, name=train.optimizer)
    model.compile(optimizer=opt, loss=model.loss)
    return True

"""NanDoctor: a Keras callback that catches the first non-finite training step, puts the last
finite weights back, and explains the NaN with nandoc's checks run on the batch that caused it.

How it works (TensorFlow backend):

* **Watching.** At `on_train_begin` it builds `fit`'s train function again through Keras' own
  machinery, around a step that runs the model's `train_step` and then, in the same compiled
  graph, reduces "is every weight and the loss finite" to one flag. That costs a few fused ops
  per step. It watches weights and not only the loss because on x86 CPUs a fused
  MatMul+BiasAdd+ReLU turns NaN inputs into 0: the loss stays finite while the kernel is NaN.
* **The batch.** The new train function takes each batch from `fit`'s iterator itself before
  handing it to the compiled step, and keeps a reference to it (no copy) until the step's flag
  has been read: so the failing batch is at hand, whatever `fit` shuffled, under any
  tf.distribute strategy (one tensor per replica, joined back into the global batch), with
  dicts or lists of tensors for a model of several inputs or outputs (read only at the NaN,
  by `batch.py`; the findings name the model input or output).
* **Reading the flag.** The flags stay on the device and are read every `check_every` steps,
  all at once (one host sync); the first bad step among them is found exactly.
* **Finite weights.** Every `snapshot_every` steps, at a check that found every step finite,
  it keeps a copy of the model's weights and the optimizer's state on the device. At a NaN it
  assigns that copy back: the model never ends training with NaN weights.
* **At the first NaN** it runs nandoc's checks on the failing batch from those weights (the
  same checks as `nandoc check`), prints the ranked report, saves it as JSON with
  `first_nonfinite` (epoch, step, where, layer) and then stops training (`on_nan="stop"`) or
  goes on from the restored weights (`on_nan="restore"`, at most `max_restores` times).

The user's `train_step`, optimizer and data pipeline are used as they are; the original train
function is put back at `on_train_end`.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import keras

from nandoc.core.records import StepLog
from nandoc.keras import at_nan
from nandoc.watch.state import DeviceSnapshot

FLAG = "__nandoc_finite__"
# The step log keeps the first LOG_HEAD steps and the last LOG_TAIL: bounded over long runs.
LOG_HEAD, LOG_TAIL = 100, 1000
ON_NAN = ("stop", "restore")


def _nonfinite_names(variables: Sequence[Any]) -> list[str]:
    import numpy as np

    out = []
    for v in variables:
        value = np.asarray(v.value if hasattr(v, "value") else v)
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            out.append(getattr(v, "path", None) or getattr(v, "name", "?"))
    return out


class NanDoctor(keras.callbacks.Callback):
    """Catch the first non-finite training step, restore the last finite weights, explain it.

    Args:
        on_nan: "stop" (restore the last finite weights and stop training) or "restore"
            (restore them and go on training; stop after `max_restores` restores).
        report_path: where the JSON report is written (None: not written). Its folder must
            exist, and a file already there must be an earlier nandoc report: ValueError
            otherwise, at construction.
        check_every: read the on-device finiteness flags every N steps (one host sync per N
            steps). The first bad step among them is still found exactly.
        snapshot_every: keep a copy of the finite weights every N steps (on the device).
        data: optional (x, y), the arrays given to fit (each an array, or a dict / list of
            arrays for several inputs or outputs, as fit took them), so that findings name
            their rows (matched by value, so shuffling does not matter).
        sources: custom-objects .py files to read (never imported) for the static checks.
        verbose: print the ranked report (to `stream`, default stderr).
        stream: a text stream for the printed report.
        max_restores: with on_nan="restore", stop after this many restores.
        tensorboard_dir: a folder (created if missing) for TensorBoard events, written at the
            end of fit from the step log: `nandoc/loss` per step and, at the first non-finite
            step, the text summaries `nandoc/first_nonfinite` and `nandoc/finding`.
        checkpoint_path: a `.keras` file where, at the first NaN, the last finite state
            (weights and optimizer state, as kept for the restore) is saved with
            `model.save`, with a `<name>.keras.json` sidecar holding the epoch and step it
            stands before: `nandoc replay --from <it> --epoch E --step S` picks up there (the
            report's `first_nonfinite.checkpoint` says E and S). Checked at construction like
            `report_path`; an existing file is replaced only if NanDoctor wrote it.

    Under a MultiWorkerMirroredStrategy across several workers (Keras 3's fit does not support
    it today, and fails before any callback runs) NanDoctor, constructed in the strategy's
    scope, prints one line saying so and stays off.
    """

    def __init__(self, on_nan: str = "stop", report_path: str | os.PathLike | None =
                 "nandoc-report.json", check_every: int = 1, snapshot_every: int = 50,
                 verbose: bool = True, data: tuple[Any, Any] | None = None,
                 sources: Sequence[Any] = (), stream: TextIO | None = None,
                 max_restores: int = 3,
                 tensorboard_dir: str | os.PathLike | None = None,
                 checkpoint_path: str | os.PathLike | None = None) -> None:
        super().__init__()
        from nandoc import require_tensorflow_backend

        require_tensorflow_backend()
        if on_nan not in ON_NAN:
            raise ValueError(f"on_nan must be one of {ON_NAN}, not {on_nan!r}")
        if check_every < 1 or snapshot_every < 1 or max_restores < 0:
            raise ValueError("check_every and snapshot_every must be >= 1, max_restores >= 0")
        self.on_nan = on_nan
        self.report_path = Path(report_path) if report_path is not None else None
        if self.report_path is not None:  # now, not at the NaN hours later: a clear ValueError
            at_nan.guard_report_path(self.report_path, tuple(sources))
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path is not None else None
        if self.checkpoint_path is not None:
            at_nan.guard_checkpoint_path(self.checkpoint_path, tuple(sources), self.report_path)
        self.checkpoint: dict[str, Any] | None = None  # where the last finite state was saved
        self.tensorboard_dir = Path(tensorboard_dir) if tensorboard_dir is not None else None
        if self.tensorboard_dir is not None:
            from nandoc.watch.tensorboard import check_folder

            check_folder("tensorboard_dir", self.tensorboard_dir,
                         {f"the file sources[{i}]": Path(p) for i, p in enumerate(sources)
                          if isinstance(p, (str, os.PathLike))})
        self.check_every = int(check_every)
        self.snapshot_every = int(snapshot_every)
        self.verbose = verbose
        self.data = data
        self.sources = tuple(sources)
        self.stream = stream
        self.max_restores = int(max_restores)
        self.report = None  # the Report of the first NaN, once there was one
        self.first_nonfinite: dict[str, Any] | None = None
        self.restores = 0
        self._built: tuple | None = None  # (model, Keras' train function, ours): kept across fits
        self._snapshot = DeviceSnapshot()
        self._reset_state()
        self._said_multi_worker = False  # Keras' fit fails before any callback hook under it
        self._multi_worker(at_nan.current_strategy())

    # -- state -------------------------------------------------------------------------------

    def _reset_state(self) -> None:
        self._pending: deque = deque()  # (epoch, step, global step, batches, flag)
        self._failing_step: int | None = None  # the global step of the first NaN
        self._snapshot_at: tuple[int, int] | None = None
        self.steplog = StepLog()  # the logged loss of every step (bounded: see LOG_HEAD)
        self._since_snapshot = 0
        self._global_step = 0
        self._epoch = 0
        self._step = 0
        self._original: Any = None
        self._active = False

    def _watched(self) -> list[Any]:
        return [v for v in self.model.weights
                if str(getattr(v, "dtype", "")).startswith(("float", "bfloat"))]

    # -- Keras hooks -------------------------------------------------------------------------

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._reset_state()
        self._snapshot.clear()
        self.report, self.first_nonfinite, self.restores = None, None, 0
        self.checkpoint = None
        opt = getattr(self.model, "optimizer", None)
        self.steplog.optimizer = type(opt).__name__ if opt is not None else None
        if keras.backend.backend() != "tensorflow" or not hasattr(self.model, "_make_function"):
            warnings.warn("NanDoctor watches training on the TensorFlow backend only; it does "
                          "nothing on this one.", stacklevel=2)
            return
        import tensorflow as tf

        self._tf = tf
        model = self.model
        if self._multi_worker(getattr(model, "distribute_strategy", None)):
            return
        self._build_optimizer(model)
        current = model.train_function
        # A fit that raised never reached on_train_end: our function may still be installed.
        original = getattr(current, "nandoc_original", current)
        cached = self._built
        if cached is not None and cached[0] is model and cached[1] is original:
            # The same model and the same Keras train function as the last fit: reuse the
            # guarded function, whose compiled graph is already traced.
            _, self._original, train_function = cached
        else:
            self._original = original
            train_function = self._build(model, tf)
            train_function.nandoc_original = original
            self._built = (model, original, train_function)
        model.train_function = train_function
        self._active = True
        self._take_snapshot(initial=True)

    @staticmethod
    def _build_optimizer(model: Any) -> None:
        """Create the optimizer's variables now, as fit does itself under a tf.distribute
        strategy, so that the first snapshot holds them (Adam's moments turn NaN with the
        weights). A model whose layers are not built yet builds them in its first step; its
        optimizer state joins the snapshots from the first check after that."""
        opt = getattr(model, "optimizer", None)
        if opt is None or getattr(opt, "built", True) or not model.trainable_variables:
            return
        if not all(getattr(layer, "built", True) for layer in model._flatten_layers()):
            return
        with model.distribute_strategy.scope():
            opt.build(model.trainable_variables)

    def _build(self, model: Any, tf: Any) -> Any:
        """fit's train function, rebuilt by Keras around a step that also computes the flag."""
        watched = self._watched()
        train_step = model.train_step

        def guarded_step(data: Any) -> Any:
            logs = train_step(data)
            if not isinstance(logs, dict):
                return logs
            flags = [tf.reduce_all(tf.math.is_finite(v.value)) for v in watched]
            loss = logs.get("loss")
            if loss is not None:
                flags.append(tf.reduce_all(tf.math.is_finite(tf.cast(loss, tf.float32))))
            out = dict(logs)
            finite = tf.cast(tf.reduce_all(tf.stack(flags)), tf.float32) if flags else \
                tf.constant(1.0)
            logged = tf.reduce_mean(tf.cast(loss, tf.float32)) if loss is not None else \
                tf.constant(float("nan"))
            out[FLAG] = tf.stack([finite, logged])  # read in one host sync: flag, logged loss
            return out

        inner = model._make_function(guarded_step)
        per_call = max(1, int(getattr(model, "steps_per_execution", 1) or 1))

        def train_function(iterator: Any) -> Any:
            batches = []
            for _ in range(per_call):
                try:
                    batches.append(next(iterator))
                except (StopIteration, tf.errors.OutOfRangeError):
                    break
            if not batches:
                raise StopIteration
            # The batches are kept (a reference, no copy) until this step's flag is read.
            return self._after_step(batches, inner(batches))

        return train_function

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch = epoch

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self._step = batch

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if not self._active or self.model.stop_training:
            return
        if self._pending:
            self._check()
        if self._since_snapshot and not self.model.stop_training:
            self._take_snapshot()  # an epoch's progress is worth keeping, whatever the cadence

    def on_train_end(self, logs: dict | None = None) -> None:
        if not self._active:
            return
        if self._pending:  # the last steps, when check_every does not divide them
            self._check()
        self.model.train_function = self._original
        self._pending.clear()
        self._snapshot.clear()
        self._active = False
        if self.tensorboard_dir is not None:
            self._write_events()

    def _write_events(self) -> None:
        from nandoc.watch.tensorboard import write_events

        report = self.report
        try:
            write_events(self.tensorboard_dir, self.steplog, gradients=False,
                         failing_step=self._failing_step, option="tensorboard_dir",
                         first=report.first_nonfinite if report is not None else None,
                         finding=report.findings[0] if report and report.findings else None)
        except Exception as exc:  # never break the user's training because of nandoc
            self._print(f"nandoc: the TensorBoard events were not written: {exc}\n")

    # -- per step ----------------------------------------------------------------------------

    def _after_step(self, batches: list[Any], logs: Any) -> Any:
        if not isinstance(logs, dict) or FLAG not in logs:
            return logs
        logs = dict(logs)
        flag = logs.pop(FLAG)
        if not self._active:  # left installed by a fit that raised: only hide the flag
            return logs
        self._global_step += len(batches)
        self._since_snapshot += len(batches)
        self._pending.append((self._epoch, self._step, self._global_step, batches, flag))
        if len(self._pending) >= self.check_every:
            self._check()
        return logs

    def _check(self) -> None:
        tf = self._tf
        pending = list(self._pending)
        self._pending.clear()
        # The one host sync: each step's (flag, logged loss), computed in its compiled step.
        pairs = (pending[0][4].numpy()[None] if len(pending) == 1 else
                 tf.stack([p[4] for p in pending]).numpy())
        bad = next((i for i, (f, _) in enumerate(pairs) if f != 1.0), None)
        for (epoch, step, *_), (_, loss) in zip(pending[:None if bad is None else bad + 1],
                                                pairs, strict=False):
            self.steplog.record(epoch + 1, step + 1, float(loss))
        if len(self.steplog.loss) >= LOG_HEAD + 2 * LOG_TAIL:
            self.steplog.trim(LOG_HEAD, LOG_TAIL)
        if bad is None:
            if self._since_snapshot >= self.snapshot_every or \
                    not self._snapshot.complete(self.model):
                self._take_snapshot()
            return
        self._on_nonfinite(*pending[bad])

    def _take_snapshot(self, initial: bool = False) -> None:
        if initial and _nonfinite_names(self._watched()):
            return  # the model came in non-finite: there is nothing finite to keep
        self._snapshot.take(self.model)
        self._snapshot_at = (self._epoch, self._step + (0 if initial else 1))
        self._since_snapshot = 0

    # -- at the first NaN --------------------------------------------------------------------

    def _on_nonfinite(self, epoch: int, step: int, global_step: int, batches: list[Any],
                      flag: Any) -> None:
        loss = flag[1]
        bad_weights = _nonfinite_names(self._watched())
        restored = self._snapshot.restore()
        where_kept = self._snapshot_at
        if self.report is None:
            self._failing_step = global_step
            value = at_nan.finite_float(loss)
            facts = {
                "epoch": epoch + 1, "step": step + 1, "global_step": global_step,
                "loss": value, "loss_finite": value is not None,
                "nonfinite_weights": bad_weights[:20],
                "weights_restored": restored,
                "restored_from": ({"epoch": where_kept[0] + 1, "step": where_kept[1]}
                                  if restored and where_kept else None),
            }
            if self.checkpoint_path is not None:
                facts["checkpoint"] = self._save_checkpoint(restored, where_kept)
            self.report, first = at_nan.diagnose_batch(self.model, batches, self.data,
                                                       self.sources, self.steplog, facts)
            self.first_nonfinite = first.to_dict()
            at_nan.publish(self.report, self.report_path, self.verbose, self.stream)
            if self.verbose and self.checkpoint is not None:
                self._print(f"nandoc: the last finite state is saved to {self.checkpoint['path']};"
                            f" replay from it: {self.checkpoint['replay']}\n")
        elif self.verbose:
            self._print(f"nandoc: non-finite values again at epoch {epoch + 1}, step "
                        f"{step + 1}; weights restored ({self.restores + 1} restores).\n")
        if self.on_nan == "restore" and restored and self.restores < self.max_restores:
            self.restores += 1
            self.model.reset_metrics()  # the epoch's running loss mean holds the NaN
            return
        if self.on_nan == "restore" and self.verbose:
            why = ("no finite weights were kept" if not restored else
                   f"{self.restores} restores did not help")
            self._print(f"nandoc: stopping training: {why}.\n")
        self.model.stop_training = True

    def _save_checkpoint(self, restored: bool, kept: tuple[int, int] | None
                         ) -> dict[str, Any] | str:
        """The restored (last finite) state to checkpoint_path; what the report says."""
        at = at_nan.resume_point(kept, (self.params or {}).get("steps"))
        if not restored or at is None:
            return "not saved: no finite state had been kept"
        done = self._global_step - self._since_snapshot  # the kept state's global step
        try:
            self.checkpoint = at_nan.save_checkpoint(self.model, self.checkpoint_path, at,
                                                     global_step=max(done, 0) + 1)
        except Exception as exc:  # never break the user's training because of nandoc
            self._print(f"nandoc: the checkpoint was not saved: {exc}\n")
            return f"not saved: {type(exc).__name__}: {exc}"
        return self.checkpoint

    def _multi_worker(self, strategy: Any) -> bool:
        """Under a MultiWorkerMirroredStrategy across workers: say so, once, and stay off."""
        if not at_nan.multi_worker(strategy):
            return False
        if not self._said_multi_worker:
            self._print(at_nan.MULTI_WORKER)
            self._said_multi_worker = True
        return True

    def _print(self, text: str) -> None:
        at_nan.say(self.stream or sys.stderr, text)


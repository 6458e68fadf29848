"""Step time of plain `model.fit` next to `model.fit` with nandoc's NanDoctor callback (and
Keras' TerminateOnNaN for reference), on a small MLP and a small Conv1D model, in one run.

    python bench/callback_overhead.py [--rounds 15] [--steps 200]

Each variant trains its own copy of the model (same architecture and seed). After one warm-up
fit per variant (tracing), every round runs one short fit per variant in a shuffled order, so
that load on the machine falls on all of them alike. A fit's time per step is measured from
the start of its epoch to the end of it (NanDoctor's end-of-epoch snapshot included); the
reported ratio is the median over rounds of the within-round ratio to plain fit, next to the
ratio of medians. Process CPU time per step is reported too: it is less sensitive to other
processes on a shared machine. Target: NanDoctor within 1.05x of plain fit.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


class Clock:
    """Two callbacks around the others: `start` first in the list, `stop` last."""

    def __init__(self, keras):
        clock = self

        class Start(keras.callbacks.Callback):
            async_safe = True

            def on_epoch_begin(self, epoch, logs=None):
                clock.t0, clock.c0 = time.perf_counter(), time.process_time()

        class Stop(keras.callbacks.Callback):
            async_safe = True

            def on_epoch_end(self, epoch, logs=None):
                clock.wall = time.perf_counter() - clock.t0
                clock.cpu = time.process_time() - clock.c0

        self.start, self.stop = Start(), Stop()
        self.wall = self.cpu = 0.0


def build(kind: str, keras):
    keras.utils.set_random_seed(0)
    if kind == "mlp":
        model = keras.Sequential([keras.Input((32,)), keras.layers.Dense(64, activation="relu"),
                                  keras.layers.Dense(64, activation="relu"),
                                  keras.layers.Dense(1, activation="sigmoid")])
    else:
        model = keras.Sequential([keras.Input((64, 8)),
                                  keras.layers.Conv1D(32, 5, activation="relu"),
                                  keras.layers.Conv1D(32, 5, activation="relu"),
                                  keras.layers.GlobalAveragePooling1D(),
                                  keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    return model


def data(kind: str, steps: int, batch: int):
    import numpy as np

    rng = np.random.default_rng(0)
    shape = (steps * batch, 32) if kind == "mlp" else (steps * batch, 64, 8)
    x = rng.normal(size=shape).astype("float32")
    y = (x.reshape(len(x), -1)[:, 0] > 0).astype("float32")
    return x, y


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--steps", type=int, default=200, help="steps per fit")
    args = parser.parse_args()

    import keras

    from nandoc.keras import NanDoctor

    variants = {
        "plain fit": lambda: [],
        "NanDoctor()": lambda: [NanDoctor(report_path=None, verbose=False)],
        "NanDoctor(check_every=10)": lambda: [NanDoctor(report_path=None, verbose=False,
                                                        check_every=10)],
        "TerminateOnNaN": lambda: [keras.callbacks.TerminateOnNaN()],
    }
    print(f"keras {keras.__version__}, {args.rounds} rounds x {args.steps} steps per fit, "
          f"{os.cpu_count()} CPUs")
    for kind, batch in (("mlp", 64), ("conv1d", 32)):
        x, y = data(kind, args.steps, batch)
        models = {name: build(kind, keras) for name in variants}
        # One callback object per variant, reused by every fit, as a user would keep it.
        callbacks = {name: make() for name, make in variants.items()}
        clock = Clock(keras)
        wall: dict[str, list[float]] = {n: [] for n in variants}
        cpu: dict[str, list[float]] = {n: [] for n in variants}

        def fit(name: str, models=models, callbacks=callbacks, clock=clock, x=x, y=y,
                batch=batch) -> None:
            models[name].fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False,
                             callbacks=[clock.start, *callbacks[name], clock.stop])

        for name in variants:  # warm-up: tracing, first-fit set-up
            fit(name)
        order = list(variants)
        rng = random.Random(0)
        for _ in range(args.rounds):
            rng.shuffle(order)
            for name in order:
                fit(name)
                wall[name].append(clock.wall / args.steps)
                cpu[name].append(clock.cpu / args.steps)
        base = wall["plain fit"]
        print(f"\n{kind} (batch {batch})")
        print(f"{'variant':<28}{'median us/step':>16}{'ratio (paired)':>16}"
              f"{'ratio (medians)':>17}{'cpu ratio':>11}")
        for name in variants:
            paired = statistics.median(w / b for w, b in zip(wall[name], base, strict=True))
            medians = statistics.median(wall[name]) / statistics.median(base)
            cpu_ratio = statistics.median(cpu[name]) / statistics.median(cpu["plain fit"])
            print(f"{name:<28}{statistics.median(wall[name]) * 1e6:>16.0f}{paired:>16.3f}"
                  f"{medians:>17.3f}{cpu_ratio:>11.3f}")


if __name__ == "__main__":
    main()

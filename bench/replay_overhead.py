"""Median step time of plain `model.fit`, of replay's watched step, and of
`tf.debugging.enable_check_numerics`, measured in the same run on the same models and data.

    python bench/replay_overhead.py [--epochs 6] [--repeats 3]

Models: a Conv1D time-series classifier (windows of 64 x 16, three Conv1D-BN-ReLU blocks) and a
3 x 256 MLP. Step time = an epoch's wall time / its steps (the first epoch, which traces, is
dropped); the variants are interleaved so that load on the machine affects all alike.
Target: the watched step within 1.10x of plain fit.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402


def conv1d_model():
    import keras

    inp = keras.Input((64, 16))
    x = inp
    for _ in range(3):
        x = keras.layers.Conv1D(32, 3, padding="same")(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    out = keras.layers.Dense(1, activation="sigmoid")(x)
    m = keras.Model(inp, out)
    m.compile(optimizer="adam", loss="binary_crossentropy")
    return m


def mlp_model():
    import keras

    m = keras.Sequential([keras.Input((64,)),
                          *[keras.layers.Dense(256, activation="relu") for _ in range(3)],
                          keras.layers.Dense(1, activation="sigmoid")])
    m.compile(optimizer="adam", loss="binary_crossentropy")
    return m


def data(kind: str):
    rng = np.random.default_rng(0)
    if kind == "conv1d":
        x = rng.normal(size=(2048, 64, 16)).astype("float32")
        y = (x[:, -1, 0] > 0).astype("float32")[:, None]
    else:
        x = rng.normal(size=(4096, 64)).astype("float32")
        y = (x[:, 0] > 0).astype("float32")[:, None]
    return x, y


class EpochTimer:
    def __init__(self):
        import keras

        class CB(keras.callbacks.Callback):
            def on_epoch_begin(cb, epoch, logs=None):
                cb.t = time.perf_counter()

            def on_epoch_end(cb, epoch, logs=None):
                self.times.append(time.perf_counter() - cb.t)

        self.times: list[float] = []
        self.callback = CB()


def fit_step_time(build, x, y, epochs, batch):
    import keras

    keras.utils.set_random_seed(0)
    m = build()
    timer = EpochTimer()
    m.fit(x, y, batch_size=batch, epochs=epochs, shuffle=False, verbose=0,
          callbacks=[timer.callback])
    steps = -(-len(x) // batch)
    return statistics.median(t / steps for t in timer.times[1:])


def check_numerics_step_time(build, x, y, epochs, batch):
    import tensorflow as tf

    tf.debugging.enable_check_numerics()
    try:
        return fit_step_time(build, x, y, epochs, batch)
    finally:
        tf.debugging.disable_check_numerics()


def watched_step_time(build, x, y, epochs, batch):
    import keras

    from nandoc.instrument.batches import epoch_batches
    from nandoc.watch.step import WatchedStep

    keras.utils.set_random_seed(0)
    m = build()
    w = WatchedStep(m)
    times = []
    for epoch in range(1, epochs + 1):
        t = time.perf_counter()
        for idx in epoch_batches(len(x), batch, False, 0, epoch):
            stats = w.train(x[idx], y[idx])
            if not stats.ok:
                raise RuntimeError("the benchmark data turned non-finite")
        times.append((time.perf_counter() - t) / -(-len(x) // batch))
    return statistics.median(times[1:])


def bare_step_time(build, x, y, epochs, batch):
    """The same loop and batches with a plain compiled step: isolates the cost of watching."""
    import keras
    import tensorflow as tf

    from nandoc.instrument.batches import epoch_batches

    keras.utils.set_random_seed(0)
    m = build()
    opt = m.optimizer
    opt.build(m.trainable_variables)

    @tf.function(autograph=False, reduce_retracing=True)
    def step(xb, yb):
        with tf.GradientTape() as tape:
            loss = m.compute_loss(x=xb, y=yb, y_pred=m(xb, training=True), training=True)
        opt.apply(tape.gradient(loss, m.trainable_variables), m.trainable_variables)
        return loss

    times = []
    for epoch in range(1, epochs + 1):
        t = time.perf_counter()
        for idx in epoch_batches(len(x), batch, False, 0, epoch):
            step(x[idx], y[idx]).numpy()
        times.append((time.perf_counter() - t) / -(-len(x) // batch))
    return statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    import tensorflow as tf

    print(f"TensorFlow {tf.__version__}, {os.cpu_count()} CPUs, batch {args.batch}, "
          f"{args.epochs} epochs x {args.repeats} repeats")
    print(f"{'model':<8}{'fit ms':>9}{'watched ms':>12}{'vs fit':>8}{'bare ms':>9}"
          f"{'watched/bare':>14}{'check_numerics ms':>19}{'vs fit':>8}")
    for kind, build in (("conv1d", conv1d_model), ("mlp", mlp_model)):
        x, y = data(kind)
        fit, watched, bare, numerics = [], [], [], []
        for _ in range(args.repeats):  # interleaved
            fit.append(fit_step_time(build, x, y, args.epochs, args.batch))
            watched.append(watched_step_time(build, x, y, args.epochs, args.batch))
            bare.append(bare_step_time(build, x, y, args.epochs, args.batch))
            numerics.append(check_numerics_step_time(build, x, y, args.epochs, args.batch))
        f, w, b, n = (statistics.median(v) * 1e3 for v in (fit, watched, bare, numerics))
        print(f"{kind:<8}{f:>9.2f}{w:>12.2f}{w / f:>7.2f}x{b:>9.2f}{w / b:>13.2f}x"
              f"{n:>19.2f}{n / f:>7.2f}x")


if __name__ == "__main__":
    main()

"""Run by test_callback.py in a subprocess: NanDoctor under a MirroredStrategy over two logical
CPUs. Logical devices must be configured before TensorFlow initialises its devices, which is
why this runs in a fresh process. Prints one JSON object for the test to read."""

from __future__ import annotations

import io
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from nandoc.keras import NanDoctor  # noqa: E402


def main() -> None:
    report_path = sys.argv[1]
    keras.utils.set_random_seed(0)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(8, activation="relu"),
                                  keras.layers.Dense(1, activation="sigmoid")])
        model.compile(optimizer="adam", loss="binary_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 3)).astype("float32")
    y = (x[:, 0] > 0).astype("float32")
    x[100, 1] = np.nan  # row 101
    ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(256, seed=1).batch(32)
    out = io.StringIO()
    doctor = NanDoctor(report_path=report_path, data=(x, y), stream=out)
    history = model.fit(ds, epochs=3, verbose=0, callbacks=[doctor])
    top = doctor.report.findings[0] if doctor.report and doctor.report.findings else None
    print(json.dumps({
        "replicas": strategy.num_replicas_in_sync,
        "epochs_run": len(history.history["loss"]),
        "weights_finite": all(bool(np.isfinite(w).all()) for w in model.get_weights()),
        "cause": top.cause if top else None,
        "rows": list(top.location.rows or ()) if top else None,
        "first_nonfinite": doctor.first_nonfinite,
        "printed": out.getvalue(),
    }))


if __name__ == "__main__":
    main()

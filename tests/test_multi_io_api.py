"""`nandoc.diagnose` and `NanDoctor` on models that are not one table in, one column out: two
named inputs (numbers and token ids into an Embedding) and two named outputs (a regression and
a sigmoid) compiled with dict losses, and a Conv2D on images. Findings name the model input or
output an array feeds; data that does not fit the model is refused with one clear message."""

from __future__ import annotations

import io

import numpy as np
import pytest

import nandoc
from nandoc.core.finding import Severity
from nandoc.errors import DataError

keras = pytest.importorskip("keras")

VOCAB = 20
N = 64


def two_in_two_out():
    keras.utils.set_random_seed(0)
    numeric = keras.Input((4,), name="numeric")
    tokens = keras.Input((6,), name="tokens", dtype="int32")
    embedded = keras.layers.Embedding(VOCAB, 4, name="embed")(tokens)
    pooled = keras.layers.GlobalAveragePooling1D(name="pool")(embedded)
    joined = keras.layers.Concatenate(name="join")([numeric, pooled])
    hidden = keras.layers.Dense(8, activation="relu", name="hidden")(joined)
    price = keras.layers.Dense(1, name="price")(hidden)
    churn = keras.layers.Dense(1, activation="sigmoid", name="churn")(hidden)
    model = keras.Model([numeric, tokens], [price, churn], name="shop")
    model.compile(optimizer="adam", loss={"price": "mse", "churn": "binary_crossentropy"},
                  loss_weights={"price": 0.5, "churn": 1.0})
    return model


@pytest.fixture(scope="module")
def multi():
    return two_in_two_out()


@pytest.fixture(scope="module")
def conv():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 1)),
                              keras.layers.Conv2D(4, 3, padding="same", activation="relu"),
                              keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    return model


def shop_data(n=N, seed=0):
    """(numeric, tokens, price, churn), fresh arrays each call."""
    rng = np.random.default_rng(seed)
    numeric = rng.normal(size=(n, 4)).astype("float32")
    tokens = rng.integers(0, VOCAB, size=(n, 6)).astype("int32")
    price = (numeric @ np.array([1.0, -0.5, 0.2, 0.0]) + 0.1 * rng.normal(size=n))
    churn = (numeric[:, 0] > 0).astype("float32")
    return numeric, tokens, price.astype("float32"), churn


def errors(report):
    return [f for f in report.findings if f.severity is Severity.ERROR]


def test_healthy_named_arrays_give_a_clean_report(multi):
    numeric, tokens, price, churn = shop_data()
    report = nandoc.diagnose(multi, {"numeric": numeric, "tokens": tokens},
                             {"price": price, "churn": churn}, validation_split=0.25)
    assert report.status == "clean" and errors(report) == []
    assert report.failed_checks() == []
    assert report.inputs["train_samples"] == 48 and report.inputs["validation_samples"] == 16
    assert report.inputs["data"] == "the arrays"


def test_a_nan_in_one_input_is_named_by_input_and_row(multi):
    numeric, tokens, price, churn = shop_data()
    numeric[9, 2] = np.nan
    report = nandoc.diagnose(multi, {"numeric": numeric, "tokens": tokens},
                             {"price": price, "churn": churn})
    top = report.findings[0]
    assert top.cause == "data-nonfinite" and top.severity is Severity.ERROR
    assert top.location.column == "numeric" and top.location.rows == (10,)
    assert top.location.file is None  # in memory: no file to point at
    assert "'numeric'" in top.title and "the arrays" in top.title


def test_a_token_id_past_the_embedding_is_found(multi):
    numeric, tokens, price, churn = shop_data()
    tokens[5, 1] = VOCAB + 5
    report = nandoc.diagnose(multi, {"numeric": numeric, "tokens": tokens},
                             {"price": price, "churn": churn})
    found = [f for f in errors(report) if f.cause == "input-index-out-of-range"]
    assert found, [f.cause for f in report.findings]
    assert found[0].location.column == "tokens" and 6 in (found[0].location.rows or ())


def test_lists_in_the_models_order_work_and_outputs_are_named(multi):
    numeric, tokens, price, churn = shop_data()
    clean = nandoc.diagnose(multi, [numeric, tokens], [price, churn])
    assert clean.status == "clean" and errors(clean) == []
    price[20] = np.inf
    report = nandoc.diagnose(multi, (numeric, tokens), (price, churn),
                             rows=np.arange(101, 101 + N))
    top = report.findings[0]
    assert top.cause == "data-nonfinite" and top.location.column == "price"
    assert top.location.rows == (121,)  # the caller's own row numbers


def test_a_conv2d_model_takes_images(conv):
    rng = np.random.default_rng(1)
    images = rng.normal(size=(32, 8, 8, 1)).astype("float32")
    labels = (images.mean(axis=(1, 2, 3)) > 0).astype("float32")
    report = nandoc.diagnose(conv, images, labels)
    assert report.status == "clean" and errors(report) == []
    assert nandoc.diagnose(conv, images[..., 0], labels).status == "clean"  # (n, H, W): as Keras
    images[7, 3, 3, 0] = np.nan
    top = nandoc.diagnose(conv, images, labels).findings[0]
    assert top.cause == "data-nonfinite" and top.location.rows == (8,)


def test_a_model_that_computes_its_own_loss_needs_no_y():
    keras.utils.set_random_seed(0)
    inp = keras.Input((3,), name="x")
    model = keras.Model(inp, keras.layers.Dense(3, name="recon")(inp))
    model.compile(optimizer="adam")
    x = np.random.default_rng(0).normal(size=(16, 3))
    assert errors(nandoc.diagnose(model, x, None)) == []
    x[2, 0] = np.nan
    top = nandoc.diagnose(model, x).findings[0]
    assert top.cause == "data-nonfinite" and top.location.rows == (3,)


@pytest.mark.parametrize("make, says", [
    (lambda a: ({"numeric": a[0], "tokenz": a[1]}, {"price": a[2], "churn": a[3]}),
     ["'tokenz'", "its inputs are 'numeric', 'tokens'", "Did you mean 'tokens'?"]),
    (lambda a: ({"numeric": a[0]}, {"price": a[2], "churn": a[3]}),
     ["not for 'tokens'"]),
    (lambda a: ({"numeric": a[0], "tokens": a[1]}, {"price": a[2], "churm": a[3]}),
     ["'churm'", "its outputs are 'price', 'churn'"]),
    (lambda a: ({"numeric": a[0][:, :3], "tokens": a[1]}, [a[2], a[3]]),
     ["x['numeric'] has shape (64, 3)", "model input 'numeric' takes arrays of shape (None, 4)"]),
    (lambda a: ({"numeric": a[0], "tokens": a[1][:50]}, [a[2], a[3]]),
     ["different numbers of samples", "x['tokens']: 50", "y['price']: 64"]),
    (lambda a: (a[0], [a[2], a[3]]),
     ["The model has 2 inputs ('numeric', 'tokens')", "x is one array"]),
    (lambda a: ([a[0]], [a[2], a[3]]),
     ["x is a list of 1 arrays, but the model has 2 inputs"]),
    (lambda a: ([a[0], a[1]], a[2]),
     ["The model has 2 outputs ('price', 'churn')", "y is one array"]),
])
def test_data_that_does_not_fit_the_model_is_refused_clearly(multi, make, says):
    x, y = make(shop_data())
    with pytest.raises(DataError) as err:
        nandoc.diagnose(multi, x, y)
    for text in says:
        assert text in str(err.value)


def test_an_image_of_the_wrong_size_is_refused_with_both_shapes(conv):
    with pytest.raises(DataError) as err:
        nandoc.diagnose(conv, np.zeros((4, 6, 8, 1)), np.zeros(4))
    assert "x has shape (4, 6, 8, 1)" in str(err.value)
    assert "takes arrays of shape (None, 8, 8, 1)" in str(err.value)


def test_the_callback_explains_a_nan_in_one_of_several_inputs():
    from nandoc.keras import NanDoctor

    numeric, tokens, price, churn = shop_data(n=128)
    numeric[40, 1] = np.nan  # row 41
    x, y = {"numeric": numeric, "tokens": tokens}, {"price": price, "churn": churn}
    model = two_in_two_out()
    out = io.StringIO()
    doctor = NanDoctor(report_path=None, data=(x, y), stream=out)
    history = model.fit(x, y, batch_size=16, epochs=3, verbose=0, callbacks=[doctor])
    assert len(history.history["loss"]) == 1  # stopped in the first epoch
    assert all(np.isfinite(w).all() for w in model.get_weights())
    top = doctor.report.findings[0]
    assert top.cause == "data-nonfinite" and top.location.column == "numeric"
    assert top.location.rows == (41,)  # the user's row, although fit shuffled
    assert doctor.first_nonfinite["where"] == "data"
    assert "Most likely root cause: data-nonfinite" in out.getvalue()


def test_the_callback_leaves_a_healthy_multi_io_fit_alone():
    from nandoc.keras import NanDoctor

    numeric, tokens, price, churn = shop_data(n=96)
    model = two_in_two_out()
    out = io.StringIO()
    doctor = NanDoctor(report_path=None, stream=out)
    history = model.fit([numeric, tokens], [price, churn], batch_size=32, epochs=2, verbose=0,
                        callbacks=[doctor])
    assert len(history.history["loss"]) == 2 and doctor.report is None
    assert out.getvalue() == ""

"""The airbench-style teacher (autocompress/strong_teacher.py) on tiny colour data, through the teacher cache."""

from __future__ import annotations

import numpy as np
import pytest

from autocompress import strong_teacher
from autocompress._tf import keras, tf
from autocompress.teacher import TeacherRecipe, train_or_load
from autocompress.training import TrainingConfig

from helpers import write_bar_npz


@pytest.fixture(scope="module")
def colour_bars(tmp_path_factory):
    from autocompress.data import load_dataset

    return load_dataset(str(write_bar_npz(tmp_path_factory.mktemp("colour") / "colour-bars.npz", train=1200,
                                          size=16, channels=3)))


def test_the_whitening_is_set_from_the_data_and_stays_frozen(colour_bars, tmp_path):
    recipe = TeacherRecipe("airbench", 0.25, TrainingConfig(epochs=4, batch_size=64, augment=("flip",)))
    teacher = train_or_load(colour_bars, recipe, tmp_path)
    assert teacher.name == "airbench x0.25" and teacher.val_accuracy > 0.8  # chance is 1/3
    model = keras.models.load_model(teacher.path / "model.keras", compile=False)  # custom layers load back
    fresh = strong_teacher.build_airbench(colour_bars.input_shape, 3, 0.25)
    strong_teacher.set_statistics(fresh, colour_bars.x_train)
    np.testing.assert_allclose(model.get_layer("whiten").get_weights()[0], fresh.get_layer("whiten").get_weights()[0],
                               rtol=1e-5, atol=1e-6)  # never trained
    patches = np.lib.stride_tricks.sliding_window_view(
        (colour_bars.x_train[:500] - fresh.get_layer("standardize").mean.numpy()[0, 0, 0])
        / np.sqrt(fresh.get_layer("standardize").variance.numpy()[0, 0, 0]), (2, 2), axis=(1, 2))
    flat = patches.transpose(0, 1, 2, 4, 5, 3).reshape(-1, 12)  # (row, column, channel) order, like the kernel
    kernel = fresh.get_layer("whiten").get_weights()[0].reshape(12, 24)[:, :12]
    whitened = flat @ kernel
    covariance = np.cov(whitened, rowvar=False)
    assert np.allclose(np.diag(covariance)[-3:], 1.0, atol=0.2)  # the strongest directions come out unit-variance
    assert train_or_load(colour_bars, recipe, tmp_path).path == teacher.path  # cached: loaded, not retrained


def test_convolutions_start_as_identities():
    model = strong_teacher.build_airbench((16, 16, 3), 3, 0.25)
    kernel = model.get_layer("g1a_conv").get_weights()[0]  # 16 -> 64 channels
    assert np.array_equal(kernel[:, :, :, 3], np.eye(1, 9, 4).reshape(3, 3)[:, :, None] * np.eye(16)[3][None, None])


def test_lookahead_averages_every_fifth_step_and_training_ends_on_the_average():
    """A one-weight model whose gradient step is known: the callback's arithmetic replayed by hand."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros")])
    model.compile(keras.optimizers.SGD(0.1), loss=lambda y, p: -tf.reduce_mean(p))  # d loss / d w = -x = -1
    steps = 20
    lookahead = strong_teacher.Lookahead(steps)
    model.fit(np.ones((steps, 1), np.float32), np.zeros((steps, 1), np.float32), batch_size=1, epochs=1,
              shuffle=False, verbose=0, callbacks=[lookahead])
    weight = average = 0.0
    for step in range(1, steps + 1):
        weight += 0.1
        if step % 5 == 0:
            decay = strong_teacher.LOOKAHEAD_DECAY * (step / steps) ** 3
            average = weight = decay * average + (1 - decay) * weight
    assert lookahead.decay(steps) == pytest.approx(0.95 ** 5) and lookahead.decay(5) < 0.02
    assert model.get_weights()[0].item() == pytest.approx(weight, rel=1e-5) == average
    assert weight < 0.1 * steps - 0.05  # the averaging held the weight back from plain SGD's 2.0

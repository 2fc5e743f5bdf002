"""Training budget as a fidelity: a cached student trained E1 epochs continues to E2 with E2 - E1 more."""

from __future__ import annotations

import math

import numpy as np
import pytest

from autocompress.compress import pipeline
from autocompress.compress.config import CompressionConfig

BASE = dict(student="cnn", width=0.5, finetune_epochs=1, batch_size=32, quant="int8")


def _iterations(student_path) -> int:
    with np.load(pipeline._state_path(student_path)) as saved:
        return int(saved["arr_0"])


@pytest.mark.parametrize("choice", ["float32", "bfloat16"])
def test_a_longer_budget_continues_the_cached_student_for_the_missing_epochs_only(bar_dataset, tmp_path, choice):
    context = pipeline.Context(bar_dataset, tmp_path / "cache", precision=choice)
    short, long = CompressionConfig(**BASE, epochs=2), CompressionConfig(**BASE, epochs=4)
    first = pipeline.run(short, context, tmp_path / "short")
    assert pipeline.shorter_training(long, context, None)[0] == 2
    second = pipeline.run(long, context, tmp_path / "long")
    steps = math.ceil(len(bar_dataset.x_train) / 32)
    students = context.model_cache / "students"
    e2, e4 = (next(students.glob(f"*-e{n}.keras")) for n in (2, 4))
    assert _iterations(e2) == 2 * steps and _iterations(e4) == 4 * steps  # 2 more epochs, counted on from 2
    assert "student trained 2 epochs" in second.reused and "student" not in first.reused
    assert second.val_accuracy >= first.val_accuracy - 0.05 and second.val_accuracy > 0.6
    assert pipeline.shorter_training(CompressionConfig(**BASE, epochs=6), context, None)[0] == 4
    again = pipeline.run(long, context, tmp_path / "again")  # the exact budget is cached: nothing trains
    assert "student" in again.reused and again.val_accuracy == second.val_accuracy


def test_a_continued_training_draws_fresh_batches_not_a_replay_of_its_first_epochs(bar_dataset, monkeypatch):
    from autocompress import training
    from autocompress.models import build_model

    first_batches = []
    real = training.training_dataset

    def recording(*args, **kwargs):
        ds = real(*args, **kwargs)
        first_batches.append(next(iter(ds))[0].numpy())
        return ds

    monkeypatch.setattr(training, "training_dataset", recording)
    config = training.TrainingConfig(epochs=1, batch_size=32, augment=("flip", "translate"))
    data = (bar_dataset.x_train, bar_dataset.y_train, bar_dataset.num_classes, config)
    model = build_model("cnn", bar_dataset.input_shape, bar_dataset.num_classes, width=0.25)
    training.train(model, *data)
    state = training.optimizer_state(model)
    training.train(model, *data, resume=state)
    training.train(model, *data, resume=state)  # the same continuation again (a killed one's retry)
    started, continued, retried = first_batches
    assert not np.array_equal(started, continued)
    np.testing.assert_array_equal(continued, retried)


def test_augmentation_mirrors_each_image_with_its_teacher_logits_and_repeats_exactly_from_the_same_seed():
    from autocompress import training

    n, classes = 64, 4
    x = np.random.default_rng(0).integers(0, 256, (n, 8, 8, 1)).astype(np.uint8)
    y = np.arange(n) % classes
    plain = np.zeros((n, classes), np.float32)
    plain[:, 0] = np.arange(1, n + 1)  # the image's number, negated in the mirrored view's logits
    mirrored = -plain

    def epochs(augment, pixels=x, count=2):
        config = training.TrainingConfig(epochs=1, batch_size=16, augment=augment, seed=3)
        ds = training.training_dataset(pixels, y, classes, config, plain, mirrored)
        return [[(images.numpy(), target.numpy()) for images, target in ds] for _ in range(count)]

    first, second = epochs(("flip",))
    flips = []
    for images, target in first:
        number = target[:, classes]
        for image, k in zip(images, number):
            original = x[int(abs(k)) - 1].astype(np.float32)
            np.testing.assert_array_equal(image, original[:, ::-1] if k < 0 else original)
        flips.extend(number < 0)
    assert 0.25 < np.mean(flips) < 0.75
    assert not all(np.array_equal(a[0], b[0]) for a, b in zip(first, second))  # each epoch draws anew
    grey = np.full_like(x, 200)
    shifted, again = (epochs(("flip", "translate"), grey, 1)[0] for _ in range(2))
    for (images, target), (images_again, target_again) in zip(shifted, again):
        np.testing.assert_array_equal(images, images_again)
        np.testing.assert_array_equal(target, target_again)
    moved = np.concatenate([images for images, _ in shifted])
    assert np.all(moved[:, 3:5, 3:5] == 200) and moved.min() >= 0  # the centre stays, the rest shifts in place
    assert 0.05 < np.mean(moved < 199.5) < 0.5  # a shift of up to 10% brings in zeros at the uncovered border

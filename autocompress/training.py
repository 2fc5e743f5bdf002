"""Training: one loop for teachers, assistants and students, with or without distillation.

Targets are packed as ``[one_hot(labels) | teacher_logits]`` so that distillation runs
through plain ``model.fit`` (which TFMOT's pruning callbacks need) and reads the teacher's
*cached* logits: no teacher forward pass per batch.

Distillation loss (Hinton et al. 2015, the convention we document)::

    loss = alpha * CE(labels, softmax(s)) + (1 - alpha) * T^2 * KL(softmax(t / T) || softmax(s / T))

``alpha = 1`` is plain cross-entropy; the T^2 factor keeps the soft-target gradients on the
same scale as the hard-target ones whatever T is.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from autocompress._tf import keras, tf
from autocompress.data import make_tf_dataset
from autocompress.errors import TrainingFailed


@dataclass(frozen=True)
class TrainingConfig:
    """How long and how fast to train. ``augment`` holds ``"flip"`` and/or ``"translate"``."""

    epochs: int
    batch_size: int = 128
    learning_rate: float = 3e-3
    augment: tuple[str, ...] = ()
    seed: int = 0


class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to ``peak`` over the first 25% of steps, then cosine decay to ~0.

    ``start_step``: the cycle starts at that optimizer step (a warm restart when a trained
    model's training is continued with its optimizer state: :func:`train`'s ``resume``).

    Not Keras' ``CosineDecay(warmup_target=...)``: that schedule counts from optimizer step 0 and
    has no offset, so a continued training (whose restored optimizer is at step ``start_step``)
    would start mid-decay; and its floor scales the cosine by ``1 - alpha``, so the same students
    would not train to the same weights as the ones already cached.
    """

    def __init__(self, peak: float, total_steps: int, start_step: int = 0):
        self.peak = peak
        self.total_steps = max(1, int(total_steps))
        self.start_step = int(start_step)

    def __call__(self, step):
        step = tf.cast(step, tf.float32) - self.start_step
        warmup = max(1.0, 0.25 * self.total_steps)
        rising = self.peak * (0.04 + 0.96 * step / warmup)
        progress = tf.clip_by_value((step - warmup) / max(1.0, self.total_steps - warmup), 0.0, 1.0)
        falling = self.peak * (0.5 * (1.0 + tf.cos(math.pi * progress)) + 1e-3)
        return tf.where(step < warmup, rising, falling)

    def get_config(self):
        return {"peak": self.peak, "total_steps": self.total_steps, "start_step": self.start_step}


class DistillationLoss(keras.losses.Loss):
    """Cross-entropy on labels plus T^2-scaled KL to the teacher's softened logits (see module doc)."""

    def __init__(self, num_classes: int, temperature: float = 1.0, alpha: float = 1.0, name: str = "distillation"):
        super().__init__(name=name)
        self.num_classes = num_classes
        self.temperature = float(temperature)
        self.alpha = float(alpha)

    def call(self, y_true, y_pred):
        labels = y_true[:, : self.num_classes]
        hard = keras.losses.categorical_crossentropy(labels, y_pred, from_logits=True)
        if self.alpha == 1.0:
            return hard
        t = self.temperature
        teacher = tf.nn.softmax(y_true[:, self.num_classes : 2 * self.num_classes] / t)
        log_student = tf.nn.log_softmax(y_pred / t)
        soft = tf.reduce_sum(teacher * (tf.math.log(teacher + 1e-12) - log_student), axis=-1)
        return self.alpha * hard + (1.0 - self.alpha) * t * t * soft

    def get_config(self):
        return {"num_classes": self.num_classes, "temperature": self.temperature, "alpha": self.alpha}


def label_accuracy(num_classes: int):
    """Accuracy against the one-hot label part of a packed target."""

    def accuracy(y_true, y_pred):
        return keras.metrics.categorical_accuracy(y_true[:, :num_classes], y_pred)

    return accuracy


def _augmenter(augment: tuple[str, ...], num_classes: int, with_flipped_logits: bool):
    """A map over ``((pixels, target), draw)``: random horizontal flips (swapping in the teacher's
    logits for the flipped image, when cached) and random translations of up to 10%, drawn by
    stateless ops from the batch's ``draw``, so that a batch's augmentation depends only on the
    dataset's seed and the batch's place in it, however the map's calls run in parallel."""
    flip, translate = "flip" in augment, "translate" in augment

    def apply(batch, draw):
        x, target = batch
        n = tf.shape(x)[0]
        if flip:
            mask = tf.random.stateless_uniform([n], seed=tf.stack([draw, 0])) < 0.5
            x = tf.where(mask[:, None, None, None], tf.reverse(x, axis=[2]), x)
            if with_flipped_logits:
                labels = target[:, :num_classes]
                plain, flipped = target[:, num_classes : 2 * num_classes], target[:, 2 * num_classes :]
                target = tf.concat([labels, tf.where(mask[:, None], flipped, plain)], axis=1)
        if translate:
            size = tf.shape(x)[1:3]
            fraction = tf.random.stateless_uniform([n, 2], seed=tf.stack([draw, 1]), minval=-0.1, maxval=0.1)
            dy, dx = tf.unstack(fraction * tf.cast(size, tf.float32)[None, :], axis=1)
            one, zero = tf.ones_like(dx), tf.zeros_like(dx)
            # each output pixel (u, v) reads input (u - dx, v - dy); zeros where that falls outside
            transforms = tf.stack([one, zero, -dx, zero, one, -dy, zero, zero], axis=1)
            x = tf.raw_ops.ImageProjectiveTransformV3(images=x, transforms=transforms, output_shape=size,
                                                      fill_value=0.0, interpolation="BILINEAR",
                                                      fill_mode="CONSTANT")
        return x, target

    return apply


def training_dataset(x, y, num_classes: int, config: TrainingConfig, teacher_logits=None,
                     teacher_logits_flipped=None) -> tf.data.Dataset:
    """Shuffled, batched, augmented ``(pixels, [one_hot | teacher_logits])`` batches."""
    extra = None
    if teacher_logits is not None:
        use_flipped = "flip" in config.augment and teacher_logits_flipped is not None
        extra = np.concatenate([teacher_logits, teacher_logits_flipped], axis=1) if use_flipped else teacher_logits
    ds = make_tf_dataset(x, y, config.batch_size, shuffle=True, seed=config.seed, extra=extra, num_classes=num_classes)
    if teacher_logits is None:  # make_tf_dataset yields int labels: pack them as one-hot
        ds = ds.map(lambda xb, yb: (xb, tf.one_hot(yb, num_classes)), num_parallel_calls=tf.data.AUTOTUNE)
    if config.augment:
        with_flipped = extra is not None and extra.shape[1] == 2 * num_classes
        draws = tf.data.Dataset.random(seed=config.seed, rerandomize_each_iteration=True)  # new ones each epoch
        ds = tf.data.Dataset.zip((ds, draws)).map(_augmenter(config.augment, num_classes, with_flipped),
                                                  num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def optimizer_state(model: keras.Model) -> list[np.ndarray]:
    """The values of ``model``'s optimizer variables after :func:`train` (step count, Adam moments)."""
    return [v.numpy() for v in model.optimizer.variables]


def _restored(optimizer, model: keras.Model, state: list[np.ndarray]) -> None:
    optimizer.build(model.trainable_variables)
    if len(optimizer.variables) != len(state):
        raise ValueError(f"optimizer state of {len(state)} variables does not fit this model's {len(optimizer.variables)}")
    for variable, value in zip(optimizer.variables, state):
        variable.assign(value)


def compile_for_training(model: keras.Model, num_classes: int, config: TrainingConfig, steps: int,
                         temperature: float = 1.0, alpha: float = 1.0, learning_rate: float | None = None,
                         resume: list[np.ndarray] | None = None) -> None:
    """Compile ``model`` with Adam on a one-cycle schedule and the distillation loss; with ``resume``
    (an :func:`optimizer_state`) the optimizer continues from that state and the cycle restarts there."""
    start = int(resume[0]) if resume else 0
    optimizer = keras.optimizers.Adam(OneCycle(learning_rate or config.learning_rate, steps, start))
    if resume:
        _restored(optimizer, model, resume)
    model.compile(
        optimizer=optimizer,
        loss=DistillationLoss(num_classes, temperature, alpha),
        metrics=[label_accuracy(num_classes)],
    )


def train(model: keras.Model, x, y, num_classes: int, config: TrainingConfig, *, teacher_logits=None,
          teacher_logits_flipped=None, temperature: float = 1.0, alpha: float = 1.0,
          learning_rate: float | None = None, callbacks=(), epochs: int | None = None,
          resume: list[np.ndarray] | None = None, backup: Path | None = None) -> keras.Model:
    """Train ``model`` in place on ``(x, y)`` (raw pixels, int labels) and return it.

    With ``teacher_logits`` and ``alpha < 1`` it distils; ``alpha = 1`` ignores the teacher.
    ``resume`` continues an earlier training of ``model`` (its :func:`optimizer_state`) for
    ``epochs`` more epochs: one more one-cycle, a warm restart, on image orders and augmentations
    drawn afresh (seeded by the restored step count). ``backup``: a folder where each
    epoch's end is checkpointed (Keras' ``BackupAndRestore``: weights, optimizer state, epoch), so
    that a training killed midway and started again with the same folder goes on from its last
    epoch, on the same schedule; the folder is removed once the training ends, or fails.
    """
    epochs = config.epochs if epochs is None else epochs
    if alpha == 1.0:
        teacher_logits = teacher_logits_flipped = None
    if resume:  # fresh image orders and augmentations, not a replay of the first training's epochs
        config = replace(config, seed=config.seed + int(resume[0]))
    ds = training_dataset(x, y, num_classes, config, teacher_logits, teacher_logits_flipped)
    steps = epochs * math.ceil(len(x) / config.batch_size)
    compile_for_training(model, num_classes, config, steps, temperature, alpha, learning_rate, resume)
    backups = [keras.callbacks.BackupAndRestore(str(backup))] if backup is not None else []
    try:
        history = model.fit(ds, epochs=epochs, verbose=0,
                            callbacks=[keras.callbacks.TerminateOnNaN(), *backups, *callbacks])
    except Exception:  # a failure, or the multi-fidelity rung stopping it: no later run resumes from here (a
        # killed process leaves the backup, and the next training goes on from it)
        if backup is not None:
            shutil.rmtree(backup, ignore_errors=True)
        raise
    losses = history.history.get("loss", [])
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)
    if not losses or not np.isfinite(losses[-1]):
        raise TrainingFailed(f"training diverged: the loss became {losses[-1] if losses else 'undefined'} in epoch "
                             f"{len(losses)}; lower the learning rate")
    return model


def predict_logits(model: keras.Model, x, batch_size: int = 512, flip: bool = False) -> np.ndarray:
    """Logits of ``model`` on raw pixels ``x`` (optionally horizontally flipped), as float32."""
    ds = tf.data.Dataset.from_tensor_slices(x).batch(batch_size).map(lambda b: tf.cast(b, tf.float32))
    if flip:
        ds = ds.map(lambda b: tf.reverse(b, axis=[2]))
    return model.predict(ds, verbose=0).astype(np.float32)


def keras_accuracy(model: keras.Model, x, y, batch_size: int = 512) -> float:
    """Top-1 accuracy of a Keras model on raw pixels."""
    return float(np.mean(np.argmax(predict_logits(model, x, batch_size), axis=1) == y))

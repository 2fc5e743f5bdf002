"""A strong teacher that trains in minutes on a CPU: a tf_keras net built on airbench's ideas.

The teacher is never deployed, so it may be large; what matters is accuracy per CPU second,
because students can only distil what it knows. The ideas come from Keller Jordan's airbench
(cifar10-airbench, 94% on CIFAR-10 in about 10 epochs); this is our own formulation in tf_keras:

* the pixels are standardised per channel, then a **frozen 2x2 patch-whitening convolution**
  (the eigenvectors of the training patches' covariance, scaled by 1/sqrt(eigenvalue), and their
  negatives) followed by GELU;
* three groups of conv3x3 -> max-pool -> BatchNorm -> GELU -> conv3x3 -> BatchNorm -> GELU
  (64, 256, 256 channels x width), convolutions initialised as identities where they can be
  (an implicit residual), BatchNorm without scale and with a fast-moving average;
* a global max-pool and a bias-free linear layer scaled by 1/9;
* Nesterov SGD with a large batch, a triangular learning-rate schedule, label smoothing 0.2,
  weight decay that follows the schedule, BatchNorm biases learning 64x faster (through an
  8x reparametrisation: ``bias = 8 * p``);
* horizontal flips that alternate each epoch (every image is seen both ways in two epochs)
  and random translations of up to 2 pixels with reflected borders;
* **lookahead averaging**: every 5 steps the weights (BatchNorm statistics included) move into an
  exponential average and are replaced by it; the average's decay grows from 0 to 0.95**5 as
  (step / total)**3, so it smooths only the end of training, which ends on the average.

The training-set statistics (channel means and deviations, whitening filters) are set from the
data before training, so the model takes raw pixels like every other model here.
"""

from __future__ import annotations

import numpy as np

from autocompress._tf import keras, tf

layers = keras.layers

MOMENTUM = 0.85
LR_PER_1024 = 11.5           # step size in units of the per-example gradient (see _learning_rates)
WEIGHT_DECAY_PER_1024 = 0.0153
BIAS_REPARAMETRISATION = 8.0  # BatchNorm biases learn 8**2 = 64x faster
LABEL_SMOOTHING = 0.2
WHITENING_PATCH = 2
WHITENING_EPSILON = 5e-4
LOOKAHEAD_EVERY = 5
LOOKAHEAD_DECAY = 0.95 ** LOOKAHEAD_EVERY
REVISION = 2  # 2: lookahead averaging; part of the built-in teacher's cache key


@keras.saving.register_keras_serializable("autocompress")
class ScaledBias(layers.Layer):
    """Adds ``scale * p`` per channel: with the same optimiser step, the bias moves ``scale**2`` faster."""

    def __init__(self, scale: float = BIAS_REPARAMETRISATION, regularizer=None, **kwargs):
        super().__init__(**kwargs)
        self.scale = float(scale)
        self.regularizer = keras.regularizers.get(regularizer)

    def build(self, input_shape):
        self.p = self.add_weight(name="p", shape=(input_shape[-1],), initializer="zeros",
                                 regularizer=self.regularizer)

    def call(self, x):
        return x + self.scale * self.p

    def get_config(self):
        return {**super().get_config(), "scale": self.scale,
                "regularizer": keras.regularizers.serialize(self.regularizer) if self.regularizer else None}


def _identity_kernels(model: keras.Model) -> None:
    """Make each 3x3 convolution's first ``in_channels`` filters identities (Dirac kernels)."""
    for layer in model.layers:
        if isinstance(layer, layers.Conv2D) and layer.kernel_size == (3, 3):
            kernel = layer.kernel.numpy()
            for c in range(min(kernel.shape[2], kernel.shape[3])):
                kernel[:, :, :, c] = 0.0
                kernel[1, 1, c, c] = 1.0
            layer.kernel.assign(kernel)


def _fan_in_uniform():
    """Uniform in +-1/sqrt(fan_in) (PyTorch's default, which airbench's step sizes assume: after a
    BatchNorm the weights' scale sets the effective step size)."""
    return keras.initializers.VarianceScaling(1 / 3, mode="fan_in", distribution="uniform")


def _l2(decay: float):
    return keras.regularizers.L2(decay / 2) if decay else None


def build_airbench(input_shape, num_classes: int, width: float = 1.0, decay: float = 0.0) -> keras.Model:
    """The network (untrained; :func:`set_statistics` fills its standardisation and whitening from data).

    ``decay`` is the L2 coefficient on the mean loss that reproduces coupled SGD weight decay.
    """
    channels = input_shape[-1]
    inputs = keras.Input(shape=input_shape, name="pixels")
    x = layers.Normalization(axis=-1, name="standardize")(inputs)
    x = layers.Conv2D(2 * channels * WHITENING_PATCH ** 2, WHITENING_PATCH, padding="valid", use_bias=False,
                      trainable=False, name="whiten")(x)
    x = ScaledBias(1.0, regularizer=_l2(decay), name="whiten_bias")(x)
    x = layers.Activation("gelu", name="whiten_gelu")(x)
    for group, base in enumerate((64, 256, 256)):
        filters = max(8, int(round(base * width)))
        for half in ("a", "b"):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False, kernel_initializer=_fan_in_uniform(),
                              kernel_regularizer=_l2(decay), name=f"g{group}{half}_conv")(x)
            if half == "a":
                x = layers.MaxPooling2D(2, name=f"g{group}_pool")(x)
            x = layers.BatchNormalization(momentum=0.6, epsilon=1e-5, center=False, scale=False,
                                          name=f"g{group}{half}_bn")(x)
            x = ScaledBias(regularizer=_l2(decay), name=f"g{group}{half}_bias")(x)
            x = layers.Activation("gelu", name=f"g{group}{half}_gelu")(x)
    x = layers.GlobalMaxPooling2D(name="pool")(x)
    x = layers.Dense(num_classes, use_bias=False, kernel_initializer=_fan_in_uniform(), kernel_regularizer=_l2(decay),
                     name="linear", dtype="float32")(x)
    outputs = layers.Rescaling(1.0 / 9.0, name="logits", dtype="float32")(x)
    model = keras.Model(inputs, outputs, name=f"airbench_w{width:g}")
    _identity_kernels(model)
    return model


def set_statistics(model: keras.Model, x: np.ndarray, sample: int = 5000) -> None:
    """Set the per-channel standardisation and the frozen whitening filters from training images."""
    images = x[:sample].astype(np.float64)
    mean = images.mean(axis=(0, 1, 2))
    std = images.std(axis=(0, 1, 2)) + 1e-6
    normalization = model.get_layer("standardize")
    normalization.set_weights([mean.astype(np.float32), (std ** 2).astype(np.float32),
                               np.array(len(images), dtype=np.int64)])
    standardized = (images - mean) / std
    k = WHITENING_PATCH
    n, h, w, c = standardized.shape
    patches = np.stack([standardized[:, i:h - k + 1 + i, j:w - k + 1 + j, :] for i in range(k) for j in range(k)],
                       axis=3)  # (n, h', w', k*k, c): kernel position (i, j) row-major, then channel
    flat = patches.reshape(-1, k * k * c)
    covariance = flat.T @ flat / len(flat)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    filters = eigenvectors / np.sqrt(np.clip(eigenvalues, 0, None) + WHITENING_EPSILON)  # columns
    kernel = filters.reshape(k, k, c, k * k * c)  # the same (i, j, channel) order as the patches
    model.get_layer("whiten").set_weights([np.concatenate([kernel, -kernel], axis=-1).astype(np.float32)])


def _triangle(peak_step: int, total: int, start: float = 0.2, end: float = 0.07):
    """Piecewise-linear multiplier: ``start`` -> 1 at ``peak_step`` -> ``end`` at ``total``."""
    boundaries = [0, peak_step, total]
    values = [start, 1.0, end]

    def multiplier(step):
        step = tf.cast(step, tf.float32)
        rising = values[0] + (values[1] - values[0]) * step / max(1, boundaries[1])
        falling = values[1] + (values[2] - values[1]) * (step - boundaries[1]) / max(1, total - boundaries[1])
        return tf.where(step < boundaries[1], rising, tf.maximum(falling, values[2]))

    return multiplier


@keras.saving.register_keras_serializable("autocompress")
class TriangleSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """The learning rate ``base`` times a triangular multiplier over ``total`` steps (peak at 23%)."""

    def __init__(self, base: float, total: int):
        self.base, self.total = float(base), int(total)
        self._multiplier = _triangle(int(0.23 * self.total), self.total)

    def __call__(self, step):
        return self.base * self._multiplier(step)

    def get_config(self):
        return {"base": self.base, "total": self.total}


class Lookahead(keras.callbacks.Callback):
    """Every ``every`` steps: ``average = d * average + (1 - d) * weights``, then ``weights = average``,
    with ``d = LOOKAHEAD_DECAY * (step / total_steps) ** 3``; the last step of training is one more
    such update with ``d = 1`` (the model ends on the average)."""

    def __init__(self, total_steps: int, every: int = LOOKAHEAD_EVERY):
        super().__init__()
        self.total_steps, self.every = int(total_steps), int(every)
        self.step = 0

    def decay(self, step: int) -> float:
        return LOOKAHEAD_DECAY * (step / self.total_steps) ** 3

    def on_train_begin(self, logs=None):
        self._weights = [w for w in self.model.weights if w.dtype.is_floating]
        self.average = [tf.Variable(w, trainable=False) for w in self._weights]
        self.step = 0

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        if self.step % self.every == 0:
            self._update(self.decay(self.step))

    def on_train_end(self, logs=None):
        self._update(1.0)

    def _update(self, decay: float) -> None:
        for average, weight in zip(self.average, self._weights):
            average.assign(decay * average + (1.0 - decay) * tf.cast(weight, average.dtype))
            weight.assign(tf.cast(average, weight.dtype))


def _learning_rates(batch_size: int) -> tuple[float, float]:
    """(learning rate for the mean loss, L2 coefficient) equal to airbench's decoupled settings.

    Its summed loss and Nesterov SGD move a weight by ``lr * grad_sum``; for a mean loss that is
    ``lr * batch * grad_mean``. Its coupled decay ``wd / lr`` on the summed loss is ``wd / (lr * batch)``
    on the mean loss.
    """
    kilostep = 1024 * (1 + 1 / (1 - MOMENTUM))
    lr = LR_PER_1024 / kilostep
    wd = WEIGHT_DECAY_PER_1024 * batch_size / kilostep
    return lr * batch_size, wd / (lr * batch_size)


def _augmented_epochs(x: np.ndarray, y: np.ndarray, num_classes: int, batch_size: int, epochs: int, seed: int,
                      flip: bool, translate: int) -> tf.data.Dataset:
    """Shuffled batches of (pixels, one-hot): flips that alternate per epoch, reflected translations."""
    rng = np.random.default_rng(seed)
    base_flip = rng.random(len(x)) < 0.5 if flip else np.zeros(len(x), bool)
    images = tf.constant(x)
    labels = tf.constant(np.eye(num_classes, dtype=np.float32)[y])
    flips = tf.constant(base_flip)
    h, w = x.shape[1:3]

    def epoch_batches(epoch):
        order = tf.data.Dataset.range(len(x)).shuffle(len(x), seed=seed + 1, reshuffle_each_iteration=True)
        flip_all = tf.logical_and(tf.constant(flip), tf.equal(epoch % 2, 1))

        def gather(indices):
            batch = tf.cast(tf.gather(images, indices), tf.float32)
            flipped = tf.math.logical_xor(tf.gather(flips, indices), flip_all)
            batch = tf.where(flipped[:, None, None, None], tf.reverse(batch, axis=[2]), batch)
            if translate:
                padded = tf.pad(batch, [[0, 0], [translate, translate], [translate, translate], [0, 0]], "REFLECT")
                n = tf.shape(batch)[0]
                offsets = tf.random.uniform([n, 2], 0, 2 * translate + 1, dtype=tf.int32)
                rows = offsets[:, 0:1] + tf.range(h)[None, :]
                cols = offsets[:, 1:2] + tf.range(w)[None, :]
                batch = tf.gather(padded, rows, axis=1, batch_dims=1)
                batch = tf.gather(batch, cols, axis=2, batch_dims=1)
            return batch, tf.gather(labels, indices)

        return order.batch(batch_size, drop_remainder=True).map(gather, num_parallel_calls=tf.data.AUTOTUNE)

    return tf.data.Dataset.range(epochs).flat_map(epoch_batches).prefetch(tf.data.AUTOTUNE)


def train_airbench(model: keras.Model, x: np.ndarray, y: np.ndarray, num_classes: int, epochs: int,
                   batch_size: int = 1024, seed: int = 0, flip: bool = True, translate: int = 2,
                   callbacks=()) -> keras.Model:
    """Fit ``model`` (from :func:`build_airbench`) on raw pixels ``x`` and int labels ``y``."""
    set_statistics(model, x)
    lr, _ = _learning_rates(batch_size)
    steps_per_epoch = len(x) // batch_size
    model.compile(
        optimizer=keras.optimizers.SGD(TriangleSchedule(lr, epochs * steps_per_epoch), momentum=MOMENTUM,
                                       nesterov=True),
        loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=LABEL_SMOOTHING),
        metrics=["accuracy"],
    )
    data = _augmented_epochs(x, y, num_classes, batch_size, epochs, seed, flip, translate)
    model.fit(data, epochs=epochs, steps_per_epoch=steps_per_epoch, verbose=0,
              callbacks=[keras.callbacks.TerminateOnNaN(), Lookahead(epochs * steps_per_epoch), *callbacks])
    return model


def decay_for(batch_size: int) -> float:
    """The L2 coefficient :func:`build_airbench` needs for training at ``batch_size``."""
    return _learning_rates(batch_size)[1]


def tta_logits(model: keras.Model, x: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Logits averaged over the mirror image and one-pixel translations (airbench's level-2 views)."""
    def views(batch):
        mirrored = lambda b: 0.5 * model(b, training=False) + 0.5 * model(tf.reverse(b, axis=[2]), training=False)
        padded = tf.pad(batch, [[0, 0], [1, 1], [1, 1], [0, 0]], "REFLECT")
        h, w = batch.shape[1:3]
        shifted = [padded[:, :h, :w], padded[:, 2:h + 2, 2:w + 2]]
        return 0.5 * mirrored(batch) + 0.25 * (mirrored(shifted[0]) + mirrored(shifted[1]))

    step = tf.function(views)
    out = [step(tf.constant(x[i:i + batch_size], tf.float32)).numpy() for i in range(0, len(x), batch_size)]
    return np.concatenate(out).astype(np.float32)

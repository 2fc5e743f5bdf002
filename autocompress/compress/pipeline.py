"""One configuration end to end: distil -> prune -> quantize -> measure the exported file.

Trained students and pruned models are cached by everything that determines them, so
configurations that differ only downstream (pruning, quantization) never retrain upstream.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from autocompress import __version__, precision
from autocompress._tf import keras
from autocompress.cache import atomic_file, exclusive, key_of
from autocompress.compress import measure, micro, npu, prune, quantize
from autocompress.compress.config import CompressionConfig, InputContract, Result
from autocompress.data import Dataset
from autocompress.errors import TrainingFailed, UselessTeacher
from autocompress.own_model import OWN_MODEL, OwnModel, build_student
from autocompress.precision import Precision
from autocompress.teacher import Teacher, TeacherRecipe, augmentations, train_or_load
from autocompress.training import TrainingConfig, optimizer_state, train

ASSISTANT_TEMPERATURE, ASSISTANT_ALPHA = 4.0, 0.5
PAPER_ASSISTANTS = {"paper-mnist-student": "paper-mnist-assistant", "paper-cifar-student": "paper-cifar-assistant"}


@dataclass(eq=False)
class Context:
    """What a configuration does not choose: the data, the caches and the (lazily loaded) teacher.

    ``teacher`` is a :class:`Teacher` or a callable returning one (trained or loaded only when a
    configuration distils; it is handed the Keras callbacks that watch a training). Teachers live in ``cache_dir``; trained students
    and pruned models in ``models_dir`` (a study's own folder), else in ``cache_dir`` too.
    ``precision`` is the one students and assistants train in: ``auto``, ``float32`` or ``bfloat16``
    (``auto`` settled per architecture by :func:`autocompress.precision.for_model`).
    ``npu``: an Ethos-U configuration (e.g. ``ethos-u55-128``) Vela estimates every file for.
    ``own_model``: the user's trained model (``--model``), the student ``"model"``.
    """

    dataset: Dataset
    cache_dir: Path
    teacher: Teacher | object | None = None
    models_dir: Path | None = None
    precision: str = "float32"
    npu: str | None = None
    own_model: OwnModel | None = None
    _assistants: dict = field(default_factory=dict, repr=False)

    @property
    def model_cache(self) -> Path:
        return Path(self.models_dir or self.cache_dir)

    def get_teacher(self, callbacks=()) -> Teacher:
        """The teacher; ``callbacks`` watch its training, if it must be trained now."""
        if self.teacher is None:
            raise ValueError("this configuration distils but the context has no teacher")
        if not isinstance(self.teacher, Teacher):
            self.teacher = self.teacher(callbacks)
        return self.teacher

    def knowledge_source(self, config: CompressionConfig) -> Teacher:
        """The model whose logits the student learns from: the teacher, or the assistant between."""
        teacher = self.get_teacher()
        if not config.assistant:
            return teacher
        architecture = PAPER_ASSISTANTS.get(config.student, config.student)
        recipe = TeacherRecipe(architecture, 1.0, TrainingConfig(
            epochs=config.epochs, batch_size=config.batch_size, learning_rate=config.learning_rate,
            augment=augmentations(self.dataset), seed=config.seed), precision=self.precision)
        if recipe not in self._assistants:
            self._assistants[recipe] = train_or_load(self.dataset, recipe, self.cache_dir, parent=teacher,
                                                     temperature=ASSISTANT_TEMPERATURE, alpha=ASSISTANT_ALPHA)
        return self._assistants[recipe]


class _Stages:
    """Stage timings of one run."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._started = 0.0

    def start(self) -> None:
        self._started = time.perf_counter()

    def stop(self, stage: str) -> None:
        self.seconds[stage] = round(self.seconds.get(stage, 0.0) + time.perf_counter() - self._started, 3)


def _cached_model(path: Path, build, reused: list[str], what: str) -> keras.Model:
    """Load the model saved at ``path`` (marking it recently used, adding ``what`` to ``reused``), or
    build it with ``build()`` and save it atomically. A file that another worker's cache trim
    removes meanwhile is rebuilt."""
    if path.exists():
        try:
            model = keras.models.load_model(path, compile=False)
            os.utime(path)
            reused.append(what)
            return model
        except (OSError, ValueError):
            if path.exists():
                raise
    model = build()
    with atomic_file(path) as tmp:
        model.save(tmp)
    return model


def _training(config: CompressionConfig, dataset: Dataset) -> TrainingConfig:
    return TrainingConfig(epochs=config.epochs, batch_size=config.batch_size, learning_rate=config.learning_rate,
                          augment=augmentations(dataset), seed=config.seed)


def _kd_arguments(config: CompressionConfig, source: Teacher | None) -> dict:
    if source is None:
        return {}
    return dict(teacher_logits=source.logits_train, teacher_logits_flipped=source.logits_train_flipped,
                temperature=config.temperature, alpha=config.alpha)


def student_precision(config: CompressionConfig, context: Context) -> Precision:
    """The precision ``config``'s student trains in (the user's own model fine-tunes in float32)."""
    dataset = context.dataset
    if config.student == OWN_MODEL:
        return "float32"
    return precision.for_model(
        context.precision, lambda: build_student(config.student, dataset.input_shape, dataset.num_classes,
                                                 width=config.width),
        f"{config.student} x{config.width:g} on {dataset.input_shape}", config.batch_size, context.cache_dir)


def lineage_key(config: CompressionConfig, context: Context, source: Teacher | None) -> str:
    """Everything that determines a student's training except how long it trains (its budget); for
    the user's own model (not trained), its file and what fine-tunes it after pruning."""
    kd = (config.temperature, config.alpha, source.key) if source else None
    if config.student == OWN_MODEL:  # what fine-tunes it after pruning
        return key_of(__version__, context.own_model and context.own_model.key, kd, config.batch_size,
                      config.learning_rate, config.seed)
    return key_of(__version__, context.dataset.fingerprint, config.student, config.width, kd,
                  config.batch_size, config.learning_rate, config.seed, student_precision(config, context))


def student_key(config: CompressionConfig, context: Context, source: Teacher | None) -> str:
    """Everything that determines a trained student (and nothing downstream of it)."""
    return f"{lineage_key(config, context, source)}-e{config.epochs}"


def run_key(config: CompressionConfig, context: Context) -> str:
    """Everything that determines a run's result: its student's key and the whole configuration."""
    source = context.knowledge_source(config) if config.distills else None
    return key_of(student_key(config, context, source), config.to_dict())


def _student_path(config: CompressionConfig, context: Context, source: Teacher | None) -> Path:
    return context.model_cache / "students" / f"{_stem(config)}-{student_key(config, context, source)}.keras"


def _stem(config: CompressionConfig) -> str:
    """The student's name as a file name's first part (a family of yours is 'package.module:function')."""
    return config.student.replace(".", "_").replace(":", "_")


def _state_path(student: Path) -> Path:
    return student.with_suffix(".optimizer.npz")


def _backup_path(student: Path) -> Path:
    """Where ``student``'s training checkpoints each epoch while it runs (a killed trial's retry goes on from it)."""
    return student.parent / ".training" / student.stem


def has_trained_student(config: CompressionConfig, context: Context) -> bool:
    """Whether ``config``'s student is in the model cache (so a run trains no student)."""
    if config.student == OWN_MODEL:  # trained already
        return True
    return _student_path(config, context, context.knowledge_source(config) if config.distills else None).exists()


def shorter_training(config: CompressionConfig, context: Context, source: Teacher | None) -> tuple[int, Path] | None:
    """The cached training of ``config``'s student with the most epochs below ``config.epochs``
    (and its optimizer state), as (epochs, path): a longer budget continues it."""
    prefix = f"{_stem(config)}-{lineage_key(config, context, source)}-e"
    found = []
    for path in (context.model_cache / "students").glob(f"{prefix}*.keras"):
        epochs = path.name[len(prefix):-len(".keras")]
        if epochs.isdigit() and int(epochs) < config.epochs and _state_path(path).exists():
            found.append((int(epochs), path))
    return max(found, default=None)


def train_student(config: CompressionConfig, context: Context, source: Teacher | None,
                  callbacks, reused: list[str], watchers=()) -> keras.Model:
    """The trained student: from the cache; or continued from its cached training with fewer epochs
    (``E2 - E1`` more epochs from its weights and optimizer state, a warm restart); or trained now
    with ``callbacks``. ``watchers`` (callbacks that only watch, e.g. progress) see either training.
    A training killed midway goes on from its last epoch when it runs again.
    The user's own model is taken as it is."""
    dataset = context.dataset
    if config.student == OWN_MODEL:
        reused.append("your model")
        return build_student(OWN_MODEL, dataset.input_shape, dataset.num_classes, own=context.own_model)
    path = _student_path(config, context, source)
    earlier = shorter_training(config, context, source)

    def build():
        keras.utils.set_random_seed(config.seed)
        kwargs = dict(callbacks=[*callbacks, *watchers], backup=_backup_path(path), **_kd_arguments(config, source))
        with precision.policy(student_precision(config, context)):
            model = build_student(config.student, dataset.input_shape, dataset.num_classes, width=config.width)
            if earlier is not None:
                epochs, cached = earlier
                model.set_weights(keras.models.load_model(cached, compile=False).get_weights())
                with np.load(_state_path(cached)) as saved:
                    state = [saved[f"arr_{i}"] for i in range(len(saved.files))]
                kwargs.update(epochs=config.epochs - epochs, resume=state, callbacks=list(watchers))
                reused.append(f"student trained {epochs} epochs")
            train(model, dataset.x_train, dataset.y_train, dataset.num_classes, _training(config, dataset), **kwargs)
        with atomic_file(_state_path(path)) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, *optimizer_state(model))
        return precision.as_float32(model)

    with exclusive(path):  # one process trains it (and owns its backup folder); another waits, then loads it
        return _cached_model(path, build, reused, "student")


def _finetune(model: keras.Model, config: CompressionConfig, context: Context, source: Teacher | None,
              callbacks=()) -> keras.Model:
    dataset = context.dataset
    return train(model, dataset.x_train, dataset.y_train, dataset.num_classes, _training(config, dataset),
                 epochs=config.finetune_epochs, learning_rate=config.learning_rate / 4, callbacks=callbacks,
                 **_kd_arguments(config, source))


def prune_student(student: keras.Model, config: CompressionConfig, context: Context, source: Teacher | None,
                  key: str, notes: list[str], reused: list[str]) -> keras.Model:
    """Prune and fine-tune ``student`` (cached by the student's key and the pruning choices)."""
    dataset = context.dataset
    prune_key = key_of(key, config.sparsity, config.prune_scope, config.prune_structure, config.prune_layers,
                       config.finetune_epochs)
    path = context.model_cache / "pruned" / f"{_stem(config)}-{prune_key}.keras"
    notes_path = path.with_suffix(".notes.json")

    def build():
        if config.prune_structure == "channel":
            smaller = prune.prune_channels(student, config.sparsity, config.prune_scope, config.prune_layers)
            return _finetune(smaller, config, context, source)
        targets = prune.layer_targets(student, config.sparsity, config.prune_scope, config.prune_layers)
        steps = prune.steps_for(len(dataset.x_train), config.batch_size, config.finetune_epochs)
        wrapped = prune.wrap_for_pruning(student, targets, config.prune_structure, steps, notes)
        _finetune(wrapped, config, context, source, callbacks=[prune.pruning_step()])
        with atomic_file(notes_path) as tmp:
            tmp.write_text(json.dumps(notes))
        return prune.strip_pruning(wrapped)

    model = _cached_model(path, build, reused, "pruned model")
    if notes_path.exists() and not notes:
        notes.extend(json.loads(notes_path.read_text()))
    return model


def _npu_fields(estimate: npu.NpuEstimate | None) -> dict:
    if estimate is None:
        return {}
    return dict(npu=estimate.accelerator, npu_ms=estimate.inference_ms, npu_cycles=estimate.cycles,
                npu_sram_bytes=estimate.sram_bytes, npu_cpu_operators=estimate.cpu_operators, npu_error=estimate.reason)


def _preprocessing(config: CompressionConfig, context: Context) -> str | None:
    """What the user's own model's input contract became in the exported file."""
    if config.student != OWN_MODEL or context.own_model is None:
        return None
    return context.own_model.scaling.describe()


def run(config: CompressionConfig, context: Context, out_dir: Path, student_callbacks=(), watchers=()) -> Result:
    """Distil, prune and quantize per ``config``; write ``model.tflite``, ``model.keras`` (the float
    model before quantization) and ``result.json`` to ``out_dir``; measure the ``.tflite``.
    ``student_callbacks`` join the student's training from scratch (when it is not cached);
    ``watchers`` (progress) also a continued one."""
    dataset = context.dataset
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)  # a folder that cannot be made fails now, before any training
    stages, notes, reused = _Stages(), [], []

    stages.start()
    source = context.knowledge_source(config) if config.distills else None
    if source is not None:
        chance = float(np.max(np.bincount(dataset.y_val)) / len(dataset.y_val))
        if source.val_accuracy <= chance + 0.01:
            raise UselessTeacher(f"the teacher ({source.name}) is no better than chance ({100 * source.val_accuracy:.1f}% "
                                 f"val vs {100 * chance:.1f}%): distilling from it is pointless; train it longer")
    model = train_student(config, context, source, student_callbacks, reused, watchers)
    stages.stop("distill")

    if config.prunes:
        stages.start()
        model = prune_student(model, config, context, source, student_key(config, context, source), notes, reused)
        stages.stop("prune")

    sparsity = prune.measure_sparsity(model)
    float_model = model
    if config.quant == "qat":
        stages.start()
        sparse = config.prunes and config.prune_structure != "channel"
        model = _finetune(quantize.prepare_qat(model, sparse), config, context, source)
        stages.stop("quantize")
    stages.start()
    tflite = quantize.convert(model, config.quant, dataset.x_train, config.per_channel, config.strip_names)
    stages.stop("convert")

    stages.start()
    tflite_path = out_dir / "model.tflite"
    with atomic_file(tflite_path) as tmp:
        tmp.write_bytes(tflite)
    with atomic_file(out_dir / "model.keras") as tmp:
        float_model.save(tmp)
    size, gzipped = measure.file_sizes(tflite_path)
    val_predictions = measure.predict(tflite_path, dataset.x_val)
    if len(set(val_predictions.tolist())) == 1 < dataset.num_classes:
        raise TrainingFailed(f"the model collapsed: it predicts class {val_predictions[0]} for every validation image; "
                             f"train it longer (more epochs) or with a lower learning rate (what was trained is "
                             f"kept: the cached student, and {tflite_path} for inspection)")
    val_accuracy = float(np.mean(val_predictions == dataset.y_val))
    test_accuracy = measure.accuracy(tflite_path, dataset.x_test, dataset.y_test)
    latency = measure.latency_ms(tflite_path, dataset.x_test[0])
    on_micro = micro.run(tflite_path, dataset.x_val, val_predictions)
    on_npu = npu.estimate(tflite_path, context.npu, config.quant) if context.npu else None
    stages.stop("measure")

    result = Result(
        config=config, dataset=dataset.name, val_accuracy=val_accuracy, test_accuracy=test_accuracy,
        tflite_bytes=size, gzip_bytes=gzipped, params=sparsity.params, nonzero_params=sparsity.nonzero_params,
        sparsity=sparsity.overall, layer_sparsity=sparsity.per_layer, latency_ms=latency,
        stage_seconds=stages.seconds,
        input_contract=InputContract(shape=(1, *dataset.input_shape), dtype=quantize.input_dtype(config.quant),
                                     preprocessing=_preprocessing(config, context)),
        tflite_path=str(tflite_path), keras_path=str(out_dir / "model.keras"),
        teacher=source.name if source else None, notes=tuple(notes), reused=tuple(reused),
        precision=student_precision(config, context),
        arena_bytes=on_micro.arena_bytes, macs=micro.macs(tflite_path), tflm_agreement=on_micro.agreement,
        tflm_error=on_micro.reason, **_npu_fields(on_npu),
    )
    with atomic_file(out_dir / "result.json") as tmp:
        tmp.write_text(json.dumps(result.to_dict(), indent=2, default=str))
    return result

"""The configuration of one compression run, and what it produced."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from autocompress.errors import UserError
from autocompress.architectures import ARCHITECTURES, FAMILIES, OWN_MODEL, is_user_family

PruneScope = Literal["global", "local"]
PruneStructure = Literal["unstructured", "2:4", "channel"]
PruneLayers = Literal["conv", "dense", "all"]
QuantMode = Literal["none", "dynamic", "float16", "int8", "qat"]

SCOPES = ("global", "local")
STRUCTURES = ("unstructured", "2:4", "channel")
LAYER_SETS = ("conv", "dense", "all")
QUANT_MODES = ("none", "dynamic", "float16", "int8", "qat")


@dataclass(frozen=True)
class CompressionConfig:
    """One point of the search space: distil, then prune, then quantize.

    Rules that make every combination valid or rejected up front:

    * ``alpha = 1`` is plain training (temperature and assistant are then ignored);
    * ``sparsity = 0`` skips pruning (scope, structure and layers are then ignored);
    * ``structure = "2:4"`` always prunes 2 of every 4 weights, so its sparsity is 0.5 (0, the
      default, becomes 0.5; any other value is rejected);
      layers whose input channels are not a multiple of 4 (e.g. a first conv on grey
      images) stay dense, and the report says so;
    * ``structure = "channel"``: ``sparsity`` is the fraction of filters (units) removed from
      each prunable layer (local) or across them (global); the model is rebuilt smaller;
    * ``quant = "qat"`` is quantization-aware fine-tuning to full int8; it cannot target float16;
    * ``per_channel = False`` stores one int8 scale per weight tensor instead of one per output
      channel (smaller files, usually a little less accurate); it applies to ``int8`` PTQ only
      (QAT learns per-channel scales; dynamic-range per-tensor gave a 10%-accurate depthwise
      model in a search) and is ignored when nothing is quantized;
    * the user's own model (``student = "model"``) is trained already: unless it is pruned (and
      fine-tuned) or QAT fine-tunes it, nothing distils, so ``alpha`` becomes 1;
    * ``strip_names = True`` drops tensor names and signatures from the ``.tflite`` (TFLite
      Micro never reads them; LiteRT still runs it through input/output indices).
    """

    student: str = "cnn"
    width: float = 0.5
    temperature: float = 4.0
    alpha: float = 1.0
    assistant: bool = False
    sparsity: float = 0.0
    prune_scope: PruneScope = "local"
    prune_structure: PruneStructure = "unstructured"
    prune_layers: PruneLayers = "conv"
    quant: QuantMode = "none"
    per_channel: bool = True
    strip_names: bool = False
    epochs: int = 10
    finetune_epochs: int = 2
    batch_size: int = 128
    learning_rate: float = 3e-3
    seed: int = 0

    def __post_init__(self) -> None:
        if self.prune_structure == "2:4" and self.sparsity == 0.0:
            object.__setattr__(self, "sparsity", 0.5)
        if self.student == OWN_MODEL and not self.prunes and self.quant != "qat":  # nothing trains: none to distil
            object.__setattr__(self, "alpha", 1.0)
            object.__setattr__(self, "temperature", _DEFAULT_TEMPERATURE)
        for name, kinds in _TYPES.items():
            value = getattr(self, name)
            if isinstance(value, bool) != (kinds == (bool,)) or not isinstance(value, kinds):
                wanted = {(bool,): "true or false", (int,): "a whole number", (int, float): "a number", (str,): "a name"}
                raise UserError(f"{name.replace('_', ' ')} must be {wanted[kinds]} (got {value!r})")
            if isinstance(value, float) and value != value:
                raise UserError(f"{name.replace('_', ' ')} must be a number (got nan)")
        checks = [
            (self.student in (*ARCHITECTURES, OWN_MODEL) or is_user_family(self.student),
             f"student must be one of {', '.join(ARCHITECTURES)}, {OWN_MODEL} (your --model) or a family of yours "
             f"as 'package.module:function' (got {self.student!r})"),
            (not (self.student == OWN_MODEL and self.assistant),
             "your own model (student 'model') is trained already: it takes no teacher assistant"),
            (self.width > 0, f"width must be > 0 (got {self.width})"),
            (self.temperature > 0, f"temperature must be > 0 (got {self.temperature}); 1 means no softening"),
            (0.0 <= self.alpha <= 1.0, f"alpha must be in [0, 1] (got {self.alpha}); 1 is plain training"),
            (0.0 <= self.sparsity < 1.0, f"sparsity must be in [0, 1) (got {self.sparsity}); 0 skips pruning"),
            (self.prune_scope in SCOPES, f"prune scope must be global or local (got {self.prune_scope!r})"),
            (self.prune_structure in STRUCTURES,
             f"prune structure must be one of {', '.join(STRUCTURES)} (got {self.prune_structure!r})"),
            (self.prune_layers in LAYER_SETS, f"prune layers must be conv, dense or all (got {self.prune_layers!r})"),
            (self.quant in QUANT_MODES, f"quant must be one of {', '.join(QUANT_MODES)} (got {self.quant!r})"),
            (self.prune_structure != "2:4" or self.sparsity == 0.5,
             f"2:4 pruning always removes half the weights: use sparsity 0.5 (got {self.sparsity})"),
            (self.per_channel or self.quant in ("int8", "none", "float16"),
             "per-tensor scales apply to int8 PTQ only (QAT learns per-channel scales; dynamic-range per-tensor "
             "broke depthwise models in tests): use --quant int8"),
            (self.epochs >= 1, f"epochs must be >= 1 (got {self.epochs})"),
            (self.finetune_epochs >= 1, f"finetune epochs must be >= 1 (got {self.finetune_epochs})"),
            (self.batch_size >= 1, f"batch size must be >= 1 (got {self.batch_size})"),
            (self.learning_rate > 0, f"learning rate must be > 0 (got {self.learning_rate})"),
        ]
        for ok, message in checks:
            if not ok:
                raise UserError(message)

    @property
    def distills(self) -> bool:
        return self.alpha < 1.0

    @property
    def prunes(self) -> bool:
        return self.sparsity > 0.0

    @property
    def quantizes(self) -> bool:
        return self.quant != "none"

    def student_choices(self) -> tuple:
        """The choices that determine the trained student, for one dataset and teacher (the
        student cache's key hashes the same ones with the dataset and the teacher)."""
        kd = (self.temperature, self.alpha, self.assistant) if self.distills else None
        return self.student, self.width, kd, self.epochs, self.batch_size, self.learning_rate, self.seed

    def label(self) -> str:
        """A short readable name, e.g. ``cnn w0.50 20ep T4 a0.3 60% global channel int8``."""
        # the width scales the families; the paper's presets are fixed
        scaled = self.student in FAMILIES or is_user_family(self.student)
        parts = [f"{self.student} w{self.width:.2f}" if scaled else self.student]
        if self.student != OWN_MODEL:  # the user's model comes trained
            parts.append(f"{self.epochs}ep")
        if self.distills:
            parts.append(f"T{self.temperature:g} a{self.alpha:.2g}" + (" +TA" if self.assistant else ""))
        if self.prunes:
            parts.append(f"{self.sparsity:.0%} {self.prune_scope} {self.prune_structure} {self.prune_layers}")
        parts.append(self.quant)
        if not self.per_channel and self.quant == "int8":
            parts.append("per-tensor")
        if self.strip_names:
            parts.append("stripped")
        return " ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "CompressionConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UserError(f"unknown configuration key(s) {', '.join(unknown)}; known keys: {', '.join(sorted(known))}")
        return cls(**values)


_DEFAULT_TEMPERATURE = CompressionConfig.__dataclass_fields__["temperature"].default

_TYPES = {
    "student": (str,), "width": (int, float), "temperature": (int, float), "alpha": (int, float), "assistant": (bool,),
    "sparsity": (int, float), "prune_scope": (str,), "prune_structure": (str,), "prune_layers": (str,),
    "quant": (str,), "per_channel": (bool,), "strip_names": (bool,), "epochs": (int,), "finetune_epochs": (int,),
    "batch_size": (int,),
    "learning_rate": (int, float), "seed": (int,),
}


@dataclass(frozen=True)
class InputContract:
    """What the exported model expects: raw pixels, NHWC, of this dtype and shape."""

    shape: tuple[int, ...]
    dtype: str
    value_range: tuple[int, int] = (0, 255)
    layout: str = "NHWC"
    output: str = "logits (argmax = class index)"
    preprocessing: str | None = None  # for your own model (``--model``): what became of its input contract


@dataclass(frozen=True)
class Result:
    """What one compression run produced, measured on the exported ``.tflite`` file."""

    config: CompressionConfig
    dataset: str
    val_accuracy: float
    test_accuracy: float
    tflite_bytes: int
    gzip_bytes: int
    params: int
    nonzero_params: int
    sparsity: float
    layer_sparsity: dict[str, float]
    latency_ms: float
    stage_seconds: dict[str, float]
    input_contract: InputContract
    tflite_path: str
    keras_path: str
    teacher: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    reused: tuple[str, ...] = field(default_factory=tuple)  # cached models this run loaded instead of training
    precision: str = "float32"  # the student trained in bfloat16 mixed precision or float32
    arena_bytes: int | None = None  # TFLite Micro's tensor arena (kTensorArenaSize); None: TFLM cannot run it
    macs: int | None = None  # multiply-accumulates of one inference
    tflm_agreement: float | None = None  # share of validation images where TFLM's class equals LiteRT's
    tflm_error: str | None = None  # why TFLM cannot run the file
    npu: str | None = None  # the Ethos-U configuration Vela estimated the file for (--npu), if asked
    npu_ms: float | None = None  # Vela's inference time estimate on it
    npu_cycles: int | None = None
    npu_sram_bytes: int | None = None
    npu_cpu_operators: int | None = None  # operators Vela leaves to the host CPU
    npu_error: str | None = None  # why Vela gave no estimate

    @property
    def efficiency(self) -> float:
        """The paper's efficiency: test accuracy (%) per KB of ``.tflite``."""
        return 100.0 * self.test_accuracy / (self.tflite_bytes / 1024)

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["efficiency"] = self.efficiency
        return values

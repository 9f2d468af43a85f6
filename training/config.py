"""The training configuration: a frozen dataclass, validated on creation, loaded from YAML + `key=value` overrides.

Flow: YAML file (optional) -> `--set key=value` overrides (values parsed as YAML, dotted keys reach into the
dict fields: ``--set loss_params.margin=0.3``) -> `TrainConfig` -> library factories taking plain values.
The final config is saved as JSON in the run folder and inside the model card.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from verify.errors import ConfigError

_VAL_METRICS = ("auto", "eer_random", "eer_skilled", "eer_mean")
_MODALITY_INPUT = {"signature": (150, 220, 1), "face": (112, 112, 3)}  # height, width, channels


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on besides the data folder (which the CLI names)."""

    # --- data and input
    modality: str = "signature"  # "signature" or "face"
    protocol: str = "auto"  # dataset layout: auto, folders, cedar, gpds, mcyt, bhsig, manifest
    height: int = 0  # network input height; 0 = modality default (signature 150, face 112)
    width: int = 0  # network input width; 0 = modality default (signature 220, face 112)
    channels: int = 0  # 1 gray or 3 RGB; 0 = modality default (signature 1, face 3)
    preprocessing: str = ""  # preprocessor kind; "" = the modality's; "resize" for pre-cropped images
    # options of that preprocessor, stored in the card (signature: ink="flat", remove_lines=true, ...; see
    # verify.preprocess.signature.SignatureParams); with --init they update the initial model's options
    preprocessing_params: dict[str, Any] = field(default_factory=dict)
    val_fraction: float = 0.2  # fraction of identities held out for validation (identity-disjoint)
    max_impostor_pairs: int = 200_000  # cap on the impostor pairs of each kind scored per validation (sampled)
    # model selection / early stopping: auto (skilled EER if forgeries, else random), eer_random, eer_skilled, eer_mean
    val_metric: str = "auto"
    augment: bool = True  # modality-specific augmentation of training crops
    # signatures: each batch holds P/2 writers with K genuine samples and K of their skilled forgeries (a class of
    # their own, so a writer's forgeries are its negatives, as Siamese SigNet trains on genuine-forgery pairs)
    train_forgeries: bool = True
    # signatures: this many writers the synthetic generator (v2) has never drawn before join each epoch's training
    # identities, rendered on the fly (seeded by seed and epoch; K genuine and K forgeries each); 0 = none
    synth_writers: int = 0
    synth_all_caps_share: float = 0.0  # share of those writers' print hands that sign in block capitals
    # --- network
    backbone: str = "resnet18"  # any timm model name
    dim: int = 128  # embedding size D
    pretrained: bool = False  # start from timm's pretrained weights (needs network or pretrained_file)
    pretrained_file: str | None = None  # local timm weight file for the backbone
    # --- loss and mining
    loss: str = "triplet"  # contrastive, triplet, margin, ntxent (verify.losses.create_loss)
    loss_params: dict[str, Any] = field(default_factory=dict)  # keyword arguments of the loss
    miner: str = "curriculum"  # none, semihard, hard, positive_margin, distance_weighted, curriculum
    miner_params: dict[str, Any] = field(default_factory=dict)  # keyword arguments of the miner
    simclr_weight: float = 0.0  # weight of a SimCLR NT-Xent term over two augmented views (OOD-aware features)
    simclr_temperature: float = 0.1  # NT-Xent temperature of that term
    # --- batches and schedule
    epochs: int = 10  # training epochs
    p: int = 8  # identities per batch
    k: int = 4  # samples per identity per batch
    steps_per_epoch: int = 0  # batches per epoch and rank; 0 = train samples // (P * K)
    optimizer: str = "adamw"  # "adamw" or "sgd" (with momentum)
    lr: float = 1e-3  # peak learning rate
    weight_decay: float = 1e-4  # decoupled (adamw) or L2 (sgd) weight decay
    momentum: float = 0.9  # sgd momentum
    scheduler: str = "cosine"  # "cosine", "step" or "constant", after the warm-up
    warmup_epochs: float = 1.0  # linear warm-up length in epochs
    step_epochs: int = 10  # "step": multiply the lr by gamma every step_epochs
    gamma: float = 0.1  # "step": decay factor
    grad_clip: float = 5.0  # max global gradient norm; 0 disables clipping
    amp: bool = True  # mixed precision, used only on CUDA
    channels_last: bool = True  # channels-last memory format, used only on CUDA
    # --- stopping, retraining, reproducibility
    early_stopping: int = 5  # stop after this many epochs without val improvement; 0 disables
    replay_fraction: float = 0.0  # share of each batch's identities drawn from --replay data
    seed: int = 0  # seeds the split, the sampler, augmentation, mining and the weights
    split_seed: int | None = None  # seeds the identity split instead of `seed` (a continued run keeps its split)
    device: str = "auto"  # "auto", "cpu", "cuda", "cuda:1", ...
    name: str = ""  # model name in the card; "" = "<modality>-<backbone>"

    def __post_init__(self) -> None:
        _check(self.modality in _MODALITY_INPUT, f"modality must be face or signature, got {self.modality!r}")
        h, w, c = _MODALITY_INPUT[self.modality]
        for key, default in (("height", h), ("width", w), ("channels", c)):
            if getattr(self, key) == 0:
                object.__setattr__(self, key, default)
        if not self.preprocessing:
            object.__setattr__(self, "preprocessing", self.modality)
        if not self.name:
            object.__setattr__(self, "name", f"{self.modality}-{self.backbone}")
        _check(self.height >= 16 and self.width >= 16, f"input must be >= 16x16, got {self.height}x{self.width}")
        _check(self.channels in (1, 3), f"channels must be 1 or 3, got {self.channels}")
        _check(0.0 < self.val_fraction < 1.0, f"val_fraction must be in (0, 1), got {self.val_fraction}")
        _check(self.dim >= 2, f"dim must be >= 2, got {self.dim}")
        _check(self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}")
        _check(self.p >= 2 and self.k >= 2, f"need P >= 2 identities and K >= 2 samples, got {self.p}x{self.k}")
        _check(self.steps_per_epoch >= 0, f"steps_per_epoch must be >= 0, got {self.steps_per_epoch}")
        _check(self.optimizer in ("adamw", "sgd"), f"optimizer must be adamw or sgd, got {self.optimizer!r}")
        _check(self.scheduler in ("cosine", "step", "constant"), f"unknown scheduler {self.scheduler!r}")
        _check(
            self.lr > 0 and self.weight_decay >= 0, f"need lr > 0, weight_decay >= 0 ({self.lr}, {self.weight_decay})"
        )
        _check(self.warmup_epochs >= 0 and self.step_epochs >= 1, "need warmup_epochs >= 0 and step_epochs >= 1")
        _check(0 < self.gamma <= 1 and self.grad_clip >= 0, "need 0 < gamma <= 1, grad_clip >= 0")
        _check(self.simclr_weight >= 0 and self.simclr_temperature > 0, "need simclr_weight >= 0, temperature > 0")
        _check(self.simclr_weight == 0 or self.augment, "simclr_weight > 0 needs augment=true (two augmented views)")
        _check(self.early_stopping >= 0, f"early_stopping must be >= 0, got {self.early_stopping}")
        _check(0.0 <= self.replay_fraction < 1.0, f"replay_fraction must be in [0, 1), got {self.replay_fraction}")
        _check(self.synth_writers >= 0, f"synth_writers must be >= 0, got {self.synth_writers}")
        _check(
            self.synth_writers == 0 or (self.modality == "signature" and self.steps_per_epoch > 0),
            "synth_writers needs modality=signature and a fixed steps_per_epoch (> 0)",
        )
        _check(
            self.synth_writers == 0 or not self.loss_params.get("per_class_beta"),
            "synth_writers adds classes every epoch; the margin loss's per_class_beta needs a fixed set",
        )
        _check(
            0.0 <= self.synth_all_caps_share <= 1.0,
            f"synth_all_caps_share must be in [0, 1], got {self.synth_all_caps_share}",
        )
        _check(self.max_impostor_pairs >= 1000, "max_impostor_pairs must be >= 1000 (TAR@FAR=1e-3 needs it)")
        _check(
            re.fullmatch(r"auto|cpu|cuda(:\d+)?", self.device) is not None,
            f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}",
        )
        _check(self.val_metric in _VAL_METRICS, f"val_metric must be one of {_VAL_METRICS}, got {self.val_metric!r}")
        for key in ("loss_params", "miner_params", "preprocessing_params"):
            _check(isinstance(getattr(self, key), dict), f"{key} must be a mapping")
        from verify.losses import LOSSES

        _check(self.loss in LOSSES, f"unknown loss {self.loss!r}; known: {', '.join(sorted(LOSSES))}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able copy (for config.json and the model card)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``["a=1", "loss_params.margin=0.3"]`` -> ``{"a": 1, "loss_params": {"margin": 0.3}}`` (YAML values)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got {item!r}")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {item!r}: the value is not valid YAML ({exc})") from exc
        parts = key.strip().split(".")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged


def cast_value(key: str, kind: str, value: Any) -> Any:
    """A YAML value as a field of type `kind` ("int", "float", "bool", "str", "dict[...]", "X | None").

    Lossless only: ``3`` is a float 3.0 and ``"1e-3"`` (a string in YAML 1.1) the float 0.001, but ``2.7``
    for an int, ``"abc"`` for a number, ``1`` for a bool or a list for a number are refused.

    Raises:
        ConfigError: naming the key, the expected type and the value given.
    """
    if kind.endswith(" | None"):
        return None if value is None else cast_value(key, kind.removesuffix(" | None"), value)
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false, got {value!r}")
        return value
    if kind in ("int", "float"):
        number = _number(value)
        if number is None or (kind == "int" and not float(number).is_integer()):
            raise ConfigError(f"{key} must be {'an integer' if kind == 'int' else 'a float'}, got {value!r}")
        return int(number) if kind == "int" else float(number)
    if kind == "str":
        if isinstance(value, (dict, list, bool)) or value is None:
            raise ConfigError(f"{key} must be a string, got {value!r}")
        return str(value)
    if kind.startswith("dict") and not isinstance(value, Mapping):
        raise ConfigError(f"{key} must be a mapping of keys to values, got {value!r}")
    return value


def _number(value: Any) -> int | float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            parsed = float(value)
        except ValueError:
            return None
        return (int(parsed) if parsed.is_integer() else parsed) if math.isfinite(parsed) else None
    return None


def _coerce(key: str, value: Any) -> Any:
    return cast_value(key, str(TrainConfig.__dataclass_fields__[key].type), value)


def load_config(
    path: str | Path | None = None, overrides: Sequence[str] = (), base: Mapping[str, Any] | None = None
) -> TrainConfig:
    """`base` values, then a YAML (or JSON) file's, then `--set` overrides -> a validated `TrainConfig`.

    Raises:
        ConfigError: unreadable file, unknown key, or an invalid value.
    """
    values: dict[str, Any] = dict(base or {})
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{path}: cannot read the config file ({exc})") from exc
        if not isinstance(loaded, Mapping):
            raise ConfigError(f"{path}: a config file must hold a mapping of keys to values")
        values = _merge(values, loaded)
    values = _merge(values, parse_overrides(overrides))
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown config key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    try:
        return TrainConfig(**{k: _coerce(k, v) for k, v in values.items()})
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid config: {exc}") from exc

"""Registries by name: network architectures, preprocessors and whole-model loaders.

Entries are "module:attribute" strings imported on first use, so that a model kind costs nothing until a card
names it. Extend with `register_architecture` / `register_preprocessor` / `register_loader`.

Contracts:
- architecture: ``fn(arch: dict) -> torch.nn.Module``; ``arch`` is the card's "architecture" section;
  the module maps float [B, C, H, W] (normalised as the card's "input" says) to L2-normalised [B, D].
- preprocessor: ``cls(card: dict)``, an instance called as ``pre(image) -> Crop``; ``image`` is a decoded
  uint8 [H, W] or [H, W, 3] RGB array; ``Crop.image`` is uint8 at the card's input size ([H, W] when
  card["input"]["channels"] == 1, else [H, W, 3]).
- loader: ``fn(card: dict, directory: Path) -> Embedder`` for models that are not torch networks.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from verify.errors import ModelError

ARCHITECTURES: dict[str, Any] = {
    "timm": "verify.models.network:create_timm_network",
    "dlib_resnet": "verify.models.dlib_resnet:create_dlib_resnet",
}
PREPROCESSORS: dict[str, Any] = {
    "signature": "verify.preprocess.signature:SignaturePreprocessor",
    "face": "verify.preprocess.face:FacePreprocessor",
    "resize": "verify.preprocess.resize:ResizePreprocessor",
}
LOADERS: dict[str, Any] = {
    "dlib_native": "verify.models.dlib_native:load_dlib_native",
    "classical-hog": "verify.models.classical:load_classical_hog",
    "fused": "verify.models.fused:load_fused",
}


def _resolve(table: dict[str, Any], kind: str, what: str) -> Any:
    if kind not in table:
        raise ModelError(f"unknown {what} {kind!r}; known: {', '.join(sorted(table))}")
    entry = table[kind]
    if isinstance(entry, str):
        module, _, attr = entry.partition(":")
        entry = getattr(importlib.import_module(module), attr)
        table[kind] = entry
    return entry


def _register(table: dict[str, Any], kind: str) -> Callable[[Any], Any]:
    def decorator(obj: Any) -> Any:
        table[kind] = obj
        return obj

    return decorator


def register_architecture(kind: str) -> Callable[[Any], Any]:
    return _register(ARCHITECTURES, kind)


def register_preprocessor(kind: str) -> Callable[[Any], Any]:
    return _register(PREPROCESSORS, kind)


def register_loader(kind: str) -> Callable[[Any], Any]:
    return _register(LOADERS, kind)


def get_architecture(kind: str) -> Callable[[dict[str, Any]], Any]:
    return _resolve(ARCHITECTURES, kind, "architecture")


def get_preprocessor(kind: str) -> Any:
    return _resolve(PREPROCESSORS, kind, "preprocessor")


def get_loader(kind: str) -> Callable[..., Any] | None:
    return _resolve(LOADERS, kind, "loader") if kind in LOADERS else None

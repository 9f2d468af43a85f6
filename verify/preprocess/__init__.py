"""Preprocessors: decoded image -> `Crop` at a model's input size (face alignment, signature normalisation)."""

from __future__ import annotations

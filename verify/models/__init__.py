"""Embedders: timm Siamese networks, ported face networks, their cards and loading."""

from verify.models.base import Embedder
from verify.models.card import load_network, new_card, read_card, save_model
from verify.models.loading import load_model
from verify.preprocess.crop import Crop

__all__ = ["Crop", "Embedder", "load_model", "load_network", "new_card", "read_card", "save_model"]

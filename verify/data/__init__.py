"""Datasets as plain lists of `Sample`s, plus thin torch pieces (`dataset.ImageDataset`, `sampler.PKBatchSampler`).

The loaders here import no torch; import `verify.data.dataset` / `verify.data.sampler` for the torch parts.
"""

from __future__ import annotations

from verify.data.folders import load_identity_folders
from verify.data.lfw import LfwPair, LfwPairs, read_lfw_pairs, write_lfw_pairs
from verify.data.pairs_csv import read_pairs_csv
from verify.data.protocols import EVAL_PROTOCOLS, FOLDER_LAYOUTS, PAIR_FORMATS, is_signature_protocol
from verify.data.sample import IMAGE_EXTENSIONS, Sample
from verify.data.signatures import SIGNATURE_PROTOCOLS, load_signature_dataset
from verify.data.splits import load_split, save_split, split_fingerprint, split_identities, split_samples

__all__ = [
    "EVAL_PROTOCOLS",
    "FOLDER_LAYOUTS",
    "IMAGE_EXTENSIONS",
    "PAIR_FORMATS",
    "SIGNATURE_PROTOCOLS",
    "LfwPair",
    "LfwPairs",
    "Sample",
    "is_signature_protocol",
    "load_identity_folders",
    "load_signature_dataset",
    "load_split",
    "read_lfw_pairs",
    "read_pairs_csv",
    "save_split",
    "split_fingerprint",
    "split_identities",
    "split_samples",
    "write_lfw_pairs",
]

"""Fitting the out-of-distribution gate of a model.

gate="gaussian" (Winkens et al. 2020): embeddings of in-distribution training inputs (one class per identity)
fit a `GaussianOODScorer`. gate="exposure" (signature models; see `verify.ood_gate.OutlierExposureGate`): the
same Gaussians plus outlier material (training/ood_material.py, its "fit" split) and ink statistics, combined by a
logistic regression; binarised copies of the signatures count as signatures. Either way the threshold keeps a
share `keep` of HELD-OUT identities' inputs; the gate goes beside the model (`ood.safetensors`, its sha256 in the
card) and into its card (`card["ood"]`), where the `Verifier` finds it.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from tqdm import tqdm

from verify.data import Sample
from verify.data.splits import split_identities, split_samples
from verify.errors import ConfigError, VerifyError
from verify.io import load_image
from verify.models.base import Embedder
from verify.models.card import write_card
from verify.ood import GaussianOODScorer
from verify.ood_gate import file_sha256

log = logging.getLogger(__name__)

OOD_FILE = "ood.safetensors"


def default_features(model: Embedder) -> str:
    """What the gate models by default: "backbone" (the features before the embedding head, which carry more
    than identity) when the model can give them, else "embedding"."""
    return "backbone" if hasattr(model, "embed_crops_with_features") else "embedding"


def _features(model: Embedder, crops: list[np.ndarray], batch_size: int, features: str) -> np.ndarray:
    if features == "backbone":
        return model.embed_crops_with_features(crops, batch_size=batch_size)[1]  # type: ignore[attr-defined]
    return model.embed_crops(crops, batch_size=batch_size)


def embed_images(
    model: Embedder, images: Sequence[np.ndarray], batch_size: int = 32, desc: str = "", features: str = "embedding"
) -> np.ndarray:
    """Preprocess decoded images and compute `features` ("embedding" [N, D] or "backbone" [N, F]) in batches."""
    out = []
    for start in tqdm(range(0, len(images), batch_size), desc=desc or "embed", leave=False, disable=not desc):
        crops = [model.preprocess(im).image for im in images[start : start + batch_size]]
        out.append(_features(model, crops, batch_size, features))
    return np.concatenate(out) if out else np.zeros((0, model.dim), np.float32)


def readable(samples: Sequence[Sample], mode: str) -> Iterator[tuple[Sample, np.ndarray]]:
    """(sample, decoded image) of every sample that decodes; the others are skipped with one warning at the end,
    as training skips them (one bad scan in a user's folder does not stop a gate fit)."""
    skipped: list[str] = []
    for s in samples:
        try:
            yield s, load_image(s.path, mode=mode)
        except VerifyError as exc:
            skipped.append(str(exc))
    if skipped:
        log.warning("OOD fit: %d of %d images skipped (first: %s)", len(skipped), len(samples), skipped[0])


def embed_samples(
    model: Embedder, samples: Sequence[Sample], batch_size: int = 32, desc: str = "", features: str = "embedding"
) -> tuple[np.ndarray, list[Sample]]:
    """Load and preprocess dataset samples, then compute `features` as `embed_images` does; returns the features
    and the samples they belong to (unreadable ones skipped, `readable`)."""
    mode = "gray" if int(model.card["input"]["channels"]) == 1 else "rgb"
    out, kept = [], []
    pairs = readable(samples, mode)
    for _ in tqdm(range(0, len(samples), batch_size), desc=desc or "embed", leave=False, disable=not desc):
        batch = list(itertools.islice(pairs, batch_size))
        if batch:
            kept += [s for s, _ in batch]
            out.append(embed_images(model, [image for _, image in batch], batch_size, features=features))
    list(pairs)  # drain: the skipped-images warning
    return (np.concatenate(out) if out else np.zeros((0, model.dim), np.float32)), kept


def gate_split(
    samples: Sequence[Sample], max_identities: int = 0, held_out: float = 0.3, seed: int = 0
) -> dict[str, list[Sample]]:
    """The samples `verify ood fit` fits on ("train") and sets the threshold on ("held_out"): a seeded sample of
    `max_identities` identities (0: all), split by identity."""
    identities = sorted({s.identity for s in samples})
    if 0 < max_identities < len(identities):
        pick = np.random.default_rng(seed).choice(len(identities), max_identities, replace=False)
        identities = sorted(identities[i] for i in pick)
        chosen = set(identities)
        samples = [s for s in samples if s.identity in chosen]
    split = split_identities(identities, {"train": 1 - held_out, "held_out": held_out}, seed=seed)
    return split_samples(samples, split)


def fit_ood_gate(
    model: Embedder,
    train: Sequence[Sample],
    held_out: Sequence[Sample],
    covariance: str = "tied",
    keep: float | None = None,
    batch_size: int = 32,
    write: bool = True,
    features: str | None = None,
    gate: str = "gaussian",
    material_n: int = 120,
    seed: int = 0,
    classifier: str = "mlp",
    members: int = 1,
) -> dict[str, Any]:
    """Fit the gate on `train` (genuine samples, class = identity), threshold on `held_out`, save beside the model.

    Args:
        features: "backbone" (default where the model has them) or "embedding": what the Gaussians model.
        keep: share of held-out inputs accepted (default 0.95 for "gaussian", 0.97 for "exposure").
        gate: "gaussian" or "exposure" (outlier exposure, `training.ood_exposure`).
        classifier: the exposure gate's classifier, "mlp" (one hidden layer) or "logistic" (steadier on weaker
            features: the distilled student's).
        members: the exposure gate's classifiers (seeds seed, seed + 1, ...); it averages their probabilities.
        material_n: outlier images per kind for "exposure" (and as many, of the "eval" split, to check it).

    Returns:
        The card's "ood" section: file, threshold, covariance, keep, sizes, the in-distribution scores' quantiles.
    """
    if gate == "exposure":
        from training.ood_exposure import fit_exposure_section

        section = fit_exposure_section(
            model,
            train,
            held_out,
            covariance,
            0.97 if keep is None else keep,
            batch_size,
            features,
            material_n,
            seed,
            classifier=classifier,
            members=members,
        )
        if write:
            _store(model, section.pop("_gate"), section)
        section.pop("_gate", None)
        return section
    if gate != "gaussian":
        raise ConfigError(f"gate must be 'gaussian' or 'exposure', got {gate!r}")
    keep = 0.95 if keep is None else keep
    train = [s for s in train if s.kind == "genuine"]
    if len({s.identity for s in train}) < 2 or len(held_out) < 10:
        raise ConfigError("the OOD gate needs >= 2 training identities and >= 10 held-out in-distribution inputs")
    features = features or default_features(model)
    feats, train = embed_samples(model, train, batch_size, desc="OOD fit: embed train", features=features)
    scorer = GaussianOODScorer(covariance=covariance).fit(feats, np.array([s.identity for s in train]))
    held_feats, held_out = embed_samples(model, held_out, batch_size, desc="OOD fit: embed held-out", features=features)
    held = scorer.score(held_feats)
    threshold = scorer.choose_threshold(held, keep=keep)
    section = {
        "file": OOD_FILE,
        "threshold": threshold,
        "covariance": covariance,
        "shrinkage": "ledoit_wolf",
        "features": features,
        "keep": keep,
        "score": "max_c 2 log N(f(x); mu_c, Sigma_c)",
        "n_train": len(train),
        "n_classes": len({s.identity for s in train}),
        "n_held_out": len(held_out),
        "held_out_quantiles": {str(q): float(np.quantile(held, q)) for q in (0.01, 0.05, 0.5)},
    }
    if write:
        _store(model, scorer, section)
    return section


def _store(model: Embedder, gate: Any, section: dict[str, Any]) -> None:
    """Save the gate beside the model and its section (with the file's sha256) into the card."""
    if model.directory is None:
        raise ConfigError("the model was not loaded from a directory; cannot store its OOD gate")
    gate.save(model.directory / OOD_FILE)
    section["sha256"] = file_sha256(model.directory / OOD_FILE)
    model.card["ood"] = section
    write_card(model.directory, model.card)

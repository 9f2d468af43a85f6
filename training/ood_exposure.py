"""Fitting an `OutlierExposureGate`: out-of-fold Gaussian scores, then a multinomial logistic regression.

The Gaussian scores of the rows the Gaussians were fitted on are optimistic (a writer's own signatures score
higher than a new writer's will), so the logistic regression learns from out-of-fold scores: writers and outlier
images are split into folds, each fold scored by Gaussians fitted on the others; the Gaussians kept in the gate
are then refitted on everything.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from tqdm import tqdm

from training.ood_fit import readable
from training.ood_material import ood_material
from verify.data import Sample
from verify.errors import ConfigError
from verify.models.base import Embedder
from verify.ood import GaussianOODScorer
from verify.ood_gate import OutlierExposureGate
from verify.ood_ink import ALL_FEATURES, ink_statistics_batch

OOD_FILE = "ood.safetensors"
_CLASSIFIER_WORDS = {"mlp": "a one-hidden-layer network", "logistic": "logistic regression"}


def _projection(x: np.ndarray, max_dim: int) -> tuple[np.ndarray, np.ndarray] | None:
    """PCA (mean [D], components [D, k]) when D > max_dim, else None."""
    if x.shape[1] <= max_dim:
        return None
    mean = x.mean(axis=0)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    return mean, np.ascontiguousarray(vt[:max_dim].T)


def _counts(values: np.ndarray) -> dict[str, int]:
    kinds, counts = np.unique(values, return_counts=True)
    return {str(k): int(c) for k, c in zip(kinds, counts, strict=True)}


def _robust_scale(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    centre = np.median(raw, axis=0)
    q25, q75 = np.percentile(raw, [25, 75], axis=0)
    scale = (q75 - q25) / 1.349
    std = raw.std(axis=0)
    scale = np.where(scale > 1e-9, scale, np.where(std > 1e-9, std, 1.0))
    return centre, scale


def fit_exposure_gate(
    in_x: np.ndarray,
    in_writer: np.ndarray,
    in_genuine: np.ndarray,
    in_ink: np.ndarray,
    out_x: np.ndarray,
    out_kind: np.ndarray,
    out_ink: np.ndarray,
    covariance: str = "tied",
    folds: int = 3,
    max_dim: int = 256,
    c: float = 1.0,
    seed: int = 0,
    classifier: str = "mlp",
    hidden: int = 64,
    ink_features: Sequence[str] = ALL_FEATURES,
    members: int = 1,
) -> OutlierExposureGate:
    """Fit the gate.

    Args:
        in_x: [N, D] features of in-distribution inputs (genuine signatures, forgeries, binarised copies).
        in_writer: [N] writer of each row (the in-distribution Gaussians' classes; also the folds' groups).
        in_genuine: [N] bool, rows the in-distribution Gaussians are fitted on.
        in_ink, out_ink: [N, F], [M, F] ink statistics of the crops.
        out_x: [M, D] features of outlier inputs; out_kind: [M] their kinds.
        folds: out-of-fold splits for the logistic regression's inputs.
        max_dim: features wider than this are projected on their first principal components.
        c: inverse L2 strength of the logistic regression ("logistic"); the MLP's L2 penalty is 0.01 / c.
        classifier: "mlp" (one hidden ReLU layer of `hidden` units) or "logistic".
        ink_features: the names of in_ink's and out_ink's columns (`verify.ood_ink.ALL_FEATURES` by default).
        members: classifiers fitted with seeds seed, seed + 1, ... on the same design; the gate averages their
            probabilities (the MLP's answer near the threshold depends on its seed; the mean is steadier).
    """
    if members < 1:
        raise ConfigError(f"members must be >= 1, got {members}")
    if in_ink.shape[1] != len(ink_features) or out_ink.shape[1] != len(ink_features):
        raise ConfigError(
            f"ink statistics have {in_ink.shape[1]} and {out_ink.shape[1]} columns for {len(ink_features)} names"
        )
    in_writer, out_kind, in_genuine = np.asarray(in_writer), np.asarray(out_kind), np.asarray(in_genuine, bool)
    writers, kinds = np.unique(in_writer[in_genuine]), np.unique(out_kind)
    if len(writers) < folds + 1 or len(kinds) < 2 or min(np.sum(out_kind == k) for k in kinds) < 2 * folds:
        raise ConfigError(
            f"the outlier-exposure gate needs > {folds} writers and >= 2 outlier kinds with >= {2 * folds} "
            f"inputs each; got {len(writers)} writers, kinds {_counts(out_kind)}"
        )
    rng = np.random.default_rng(seed)
    projection = _projection(np.vstack([in_x[in_genuine], out_x]), max_dim)
    gate = OutlierExposureGate(
        GaussianOODScorer(), GaussianOODScorer(), [], np.zeros(0), np.ones(0), projection, ink_features=ink_features
    )
    xi, xo = gate.project(in_x), gate.project(out_x)
    writer_fold = dict(zip(writers, rng.permutation(len(writers)) % folds, strict=True))
    in_fold = np.array([writer_fold.get(w, -1) for w in in_writer])
    out_fold = np.zeros(len(xo), int)
    for k in kinds:
        rows = np.flatnonzero(out_kind == k)
        out_fold[rows] = rng.permutation(len(rows)) % folds
    inlier = GaussianOODScorer(covariance).fit(xi[in_genuine], in_writer[in_genuine])
    outlier = GaussianOODScorer(covariance).fit(xo, out_kind)
    s_in_in, s_out_out = inlier.score(xi), outlier.class_scores(xo)
    for f in range(folds):
        train = in_genuine & (in_fold != f)
        fold_in = GaussianOODScorer(covariance).fit(xi[train], in_writer[train])
        s_in_in[in_fold == f] = fold_in.score(xi[in_fold == f])
        fold_out = GaussianOODScorer(covariance).fit(xo[out_fold != f], out_kind[out_fold != f])
        s_out_out[out_fold == f] = fold_out.class_scores(xo[out_fold == f])
    dim = xi.shape[1]
    raw = np.vstack(
        [
            OutlierExposureGate.raw_design(s_in_in, outlier.class_scores(xi), in_ink, dim),
            OutlierExposureGate.raw_design(inlier.score(xo), s_out_out, out_ink, dim),
        ]
    )
    centre, scale = _robust_scale(raw)
    design = np.clip((raw - centre) / scale, -8.0, 8.0)
    y = np.r_[np.zeros(len(xi), int), 1 + np.searchsorted(kinds, out_kind)]
    stacks = [_classifier(design, y, classifier, c, hidden, seed + m) for m in range(members)]
    return OutlierExposureGate(
        inlier, outlier, stacks[0], centre, scale, projection, ink_features=ink_features, members=stacks[1:]
    )


def _classifier(
    design: np.ndarray, y: np.ndarray, kind: str, c: float, hidden: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Layers (weight [in, out], bias [out]) of a softmax classifier over balanced classes."""
    if kind == "logistic":
        lr = LogisticRegression(C=c, class_weight="balanced", max_iter=5000).fit(design, y)
        return [(lr.coef_.T, lr.intercept_)]
    if kind != "mlp":
        raise ConfigError(f"classifier must be 'mlp' or 'logistic', got {kind!r}")
    counts = np.bincount(y)
    reps = np.maximum(1, np.round(counts.max() / counts).astype(int))  # balance classes by repetition
    rows = np.concatenate([np.tile(np.flatnonzero(y == k), reps[k]) for k in range(len(counts))])
    mlp = MLPClassifier((hidden,), alpha=0.01 / c, max_iter=2000, random_state=seed).fit(design[rows], y[rows])
    return list(zip(mlp.coefs_, mlp.intercepts_, strict=True))


# --- from a model and a dataset ----------------------------------------------------------------------------
def binarised(image: np.ndarray) -> np.ndarray:
    """A pure black-and-white copy of a scan (Otsu), uint8 like the input: what a bilevel scanner gives."""
    grey = image if image.ndim == 2 else cv2.cvtColor(image[..., :3], cv2.COLOR_RGB2GRAY)
    bw = cv2.threshold(grey, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)[1]
    return bw if image.ndim == 2 else np.repeat(bw[..., None], image.shape[2], axis=2)


def with_guides(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A copy of a signature scan with ruled lines through its baseline or a box around it, as on forms."""
    grey = image if image.ndim == 2 else cv2.cvtColor(image[..., :3], cv2.COLOR_RGB2GRAY)
    ink = cv2.threshold(grey, 0, 255, cv2.THRESH_BINARY_INV | cv2.THRESH_OTSU)[1]
    x, y, w, h = cv2.boundingRect(ink)
    out = image.copy()
    if w == 0 or h == 0:
        return out
    tone = float(rng.uniform(60, 200))
    colour: Any = tone if image.ndim == 2 else [tone, tone, min(255.0, tone + rng.uniform(0, 60))]
    thick = int(rng.integers(1, 4))
    if rng.random() < 0.6:
        gap, line = rng.uniform(0.5, 1.2) * h, y + h - rng.uniform(-0.05, 0.35) * h
        for _ in range(1 if rng.random() < 0.5 else 3):
            cv2.line(out, (0, int(line)), (out.shape[1] - 1, int(line)), colour, thick, cv2.LINE_AA)
            line -= gap
    else:
        pad = rng.uniform(0.05, 0.4, 4) * h
        cv2.rectangle(
            out,
            (int(x - pad[0]), int(y - pad[1])),
            (int(x + w + pad[2]), int(y + h + pad[3])),
            colour,
            thick,
            cv2.LINE_AA,
        )
    return out


MIN_PER_KIND = 6  # a kind of outlier material with fewer usable images is left out of the fit


def _crops(model: Embedder, images: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Preprocessed crops of the images the preprocessing does not already refuse as blank."""
    out = []
    for image in images:
        crop = model.preprocess(image)
        if crop.info.get("ink_fraction", 1.0) != 0:
            out.append(crop.image)
    return out


def _embed(model: Embedder, crops: list[np.ndarray], features: str, batch_size: int, desc: str) -> np.ndarray:
    out = []
    for start in tqdm(range(0, len(crops), batch_size), desc=desc, leave=False):
        chunk = crops[start : start + batch_size]
        if features == "backbone":
            out.append(model.embed_crops_with_features(chunk, batch_size=batch_size)[1])  # type: ignore[attr-defined]
        else:
            out.append(model.embed_crops(chunk, batch_size=batch_size))
    return np.concatenate(out).astype(np.float64)


def _signatures(
    model: Embedder, samples: Sequence[Sample], cap: int, rng: np.random.Generator
) -> tuple[list[np.ndarray], list[str], list[bool], list[bool]]:
    """Crops, writers, is-genuine and is-binarised flags of (at most `cap`) samples, binarised copies of half of
    them and copies of the other half on ruled lines or in a box."""
    mode = "gray" if int(model.card["input"]["channels"]) == 1 else "rgb"
    picked = [samples[i] for i in sorted(rng.choice(len(samples), size=min(cap, len(samples)), replace=False))]
    crops, writers, genuine, bw = [], [], [], []
    for k, (s, image) in enumerate(readable(picked, mode)):
        copy = binarised(image) if k % 2 == 0 else with_guides(image, rng)
        for variant, is_bw in ((image, False), (copy, k % 2 == 0)):
            got = _crops(model, [variant])
            crops += got
            writers += [str(s.identity)] * len(got)
            genuine += [s.kind == "genuine"] * len(got)
            bw += [is_bw] * len(got)
    return crops, writers, genuine, bw


def fit_exposure_section(
    model: Embedder,
    train: Sequence[Sample],
    held_out: Sequence[Sample],
    covariance: str,
    keep: float,
    batch_size: int,
    features: str | None,
    material_n: int,
    seed: int,
    cap: int = 900,
    classifier: str = "mlp",
    members: int = 1,
) -> dict[str, Any]:
    """Fit an `OutlierExposureGate` for `model`; returns the card's "ood" section with the gate under "_gate"."""
    from training.ood_fit import default_features

    if material_n < MIN_PER_KIND:
        raise ConfigError(f"the exposure gate needs at least {MIN_PER_KIND} outlier images per kind, got {material_n}")
    features = features or default_features(model)
    rng = np.random.default_rng(seed)
    h, w = int(model.card["input"]["height"]), int(model.card["input"]["width"])
    crops, writers, genuine, _ = _signatures(model, train, cap, rng)
    material = ood_material(max(h, 150), max(w, 220), n=material_n, seed=seed, split="fit")
    out_crops, out_kind = [], []
    for kind, images in material.items():
        got = _crops(model, images)
        if len(got) >= MIN_PER_KIND:
            out_crops += got
            out_kind += [kind] * len(got)
    if not out_crops:
        raise ConfigError(
            f"no kind of outlier material kept {MIN_PER_KIND} images after preprocessing; use more per kind "
            f"than {material_n}"
        )
    x_in = _embed(model, crops, features, batch_size, "OOD fit: signatures")
    x_out = _embed(model, out_crops, features, batch_size, "OOD fit: outlier material")
    gate = fit_exposure_gate(
        x_in,
        np.array(writers),
        np.array(genuine),
        ink_statistics_batch(crops),
        x_out,
        np.array(out_kind),
        ink_statistics_batch(out_crops),
        covariance=covariance,
        seed=seed,
        classifier=classifier,
        members=members,
    )
    h_crops, _, _, h_bw = _signatures(model, held_out, cap, rng)
    h_scores = gate.score(_embed(model, h_crops, features, batch_size, "OOD fit: held-out"), h_crops)
    gate.threshold = float(np.quantile(h_scores, 1.0 - keep, method="lower"))
    check = {}
    for kind, images in ood_material(
        max(h, 150), max(w, 220), n=max(material_n, 10), seed=seed + 1, split="eval"
    ).items():
        got = _crops(model, images)
        rejected = len(images) - len(got)  # refused by preprocessing as blank
        if got:
            rejected += int(np.sum(gate.score(_embed(model, got, features, batch_size, kind), got) < gate.threshold))
        check[kind] = rejected / len(images)
    h_bw_arr = np.array(h_bw)
    return {
        "_gate": gate,
        "file": OOD_FILE,
        "kind": "outlier_exposure",
        "threshold": gate.threshold,
        "score": f"p(signature | x): {_CLASSIFIER_WORDS[classifier]} over in-distribution Gaussians, per-kind "
        "outlier Gaussians and ink statistics",
        "covariance": covariance,
        "shrinkage": "ledoit_wolf",
        "features": features,
        "classifier": classifier,
        "members": members,
        "keep": keep,
        "kinds": gate.kinds,
        "n_train": len(crops),
        "n_classes": len(set(writers)),
        "n_outlier": {k: out_kind.count(k) for k in gate.kinds},
        "n_held_out": len(h_crops),
        "held_out_refused": {
            "scans": float(np.mean(h_scores[~h_bw_arr] < gate.threshold)),
            "binarised": float(np.mean(h_scores[h_bw_arr] < gate.threshold)) if h_bw_arr.any() else None,
        },
        "eval_material_rejected": check,
    }

"""Validation on held-out identities: embed the crops, score the pairs `verify eval` scores, EER and TAR@FAR.

The pairs are built by `verify.eval.pairs.scored_sample_pairs`, the pair builder of `verify eval` (genuine pairs
of one identity, skilled forgeries against their writer's genuine samples, random impostors: genuine samples of
other identities, subsampled per identity), so the validation EER equals `verify eval --calibration-fraction 0`'s
on the same images and seed. Above `max_impostor_pairs` pairs of one impostor kind, a seeded sample of that many
is scored (the two then differ; the default cap is far above what the pair builder draws for usual sets).
`val_eer`, the model-selection / early-stopping metric, is chosen by `metric`: "auto" (the skilled-forgery EER
when there are forgeries, else the random one), "eer_random", "eer_skilled" or "eer_mean" (their mean).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from training.data import CropSet
from verify.data.sample import Sample
from verify.eval.metrics import roc_summary
from verify.eval.pairs import scored_sample_pairs
from verify.models.runtime import crops_to_tensor

FARS = (1e-2, 1e-3)


@torch.no_grad()
def embed_crop_set(
    net: nn.Module, crops: Sequence[np.ndarray], card: dict[str, Any], device: torch.device, batch_size: int = 64
) -> np.ndarray:
    """Embeddings [N, D] (float32, L2-normalised) of uint8 crops, network in eval mode."""
    was_training = net.training
    net.eval()
    out = []
    for start in range(0, len(crops), batch_size):
        x = crops_to_tensor(crops[start : start + batch_size], card).to(device)
        out.append(net(x).float().cpu().numpy())
    net.train(was_training)
    if not out:
        return np.zeros((0, int(card["architecture"]["dim"])), np.float32)
    return np.concatenate(out).astype(np.float32)


def _capped(scores: np.ndarray, cap: int, rng: np.random.Generator) -> np.ndarray:
    """`scores` when there are at most `cap`, else `cap` of them drawn at random (seeded, without replacement)."""
    if scores.size <= cap:
        return scores
    return scores[np.sort(rng.choice(scores.size, size=cap, replace=False))]


def score_pairs(
    emb: np.ndarray, samples: Sequence[Sample], max_impostor_pairs: int, seed: int = 0
) -> dict[str, np.ndarray]:
    """Scores [n] of the "genuine", "random" and "skilled" pairs of `verify eval` (see the module docstring).

    Args:
        emb: [N, D] L2-normalised embeddings of `samples` [N], in that order.
        max_impostor_pairs: cap on the scored pairs of each impostor kind.
        seed: seeds the pair builder (as `verify eval --seed`) and the cap's sample.
    """
    table = scored_sample_pairs(samples, emb, seed=seed)
    kind = table["kind"].replace({"impostor": "random"})  # face sets: impostors are the random kind here
    rng = np.random.default_rng(seed)
    return {
        "genuine": table.loc[kind == "genuine", "score"].to_numpy(),
        "random": _capped(table.loc[kind == "random", "score"].to_numpy(), max_impostor_pairs, rng),
        "skilled": _capped(table.loc[kind == "skilled", "score"].to_numpy(), max_impostor_pairs, rng),
    }


VAL_METRICS = ("auto", "eer_random", "eer_skilled", "eer_mean")


def _selection(out: dict[str, Any], metric: str) -> float | None:
    rand, skilled = out["eer_random"], out["eer_skilled"]
    if metric == "eer_mean" and rand is not None and skilled is not None:
        return (rand + skilled) / 2
    if metric in ("auto", "eer_skilled", "eer_mean"):
        return skilled if skilled is not None else rand
    return rand


def pair_metrics(scores: dict[str, np.ndarray], metric: str = "auto") -> dict[str, Any]:
    """EER and TAR@FAR per impostor kind, plus pair counts; None where a kind has no pairs."""
    out: dict[str, Any] = {"genuine_pairs": int(scores["genuine"].size)}
    for kind in ("random", "skilled"):
        imp = scores[kind]
        out[f"{kind}_pairs"] = int(imp.size)
        summary = roc_summary(scores["genuine"], imp, FARS) if imp.size and scores["genuine"].size else {}
        out[f"eer_{kind}"] = summary.get("eer")
        for far in FARS:
            out[f"tar@far={far:g}_{kind}"] = summary.get(f"tar@far={far:g}")
    out["val_eer"] = _selection(out, metric)
    return out


def validate(
    net: nn.Module,
    crop_set: CropSet,
    card: dict[str, Any],
    device: torch.device,
    max_impostor_pairs: int = 200_000,
    seed: int = 0,
    metric: str = "auto",
) -> dict[str, Any]:
    """Verification metrics of `net` on a crop set of held-out identities (see `pair_metrics`)."""
    if len(crop_set) == 0:
        return {"val_eer": None}
    emb = embed_crop_set(net, crop_set.crops, card, device)
    return pair_metrics(score_pairs(emb, crop_set.samples, max_impostor_pairs, seed), metric)

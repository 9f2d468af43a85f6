"""Validation on held-out identities: embed the crops, score genuine / impostor pairs, EER and TAR@FAR.

Pairs (cosine similarity of L2-normalised embeddings):
- genuine: every pair of two genuine samples of one identity;
- random impostors: genuine samples of two different identities (all pairs, or a seeded sample of
  `max_impostor_pairs` when there are more);
- skilled impostors (signatures with forgeries): a genuine sample and a skilled forgery of the same identity.
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
from verify.eval.metrics import eer, tar_at_far
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


def _genuine_scores(emb: np.ndarray, ids: np.ndarray) -> np.ndarray:
    out = []
    for ident in np.unique(ids):
        block = emb[ids == ident]
        iu, ju = np.triu_indices(len(block), k=1)
        out.append(np.sum(block[iu] * block[ju], axis=1))
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def _impostor_scores(emb: np.ndarray, ids: np.ndarray, cap: int, rng: np.random.Generator) -> np.ndarray:
    """All cross-identity pairs when there are at most `cap`, else `cap` of them drawn at random."""
    n = len(ids)
    if n * (n - 1) // 2 <= 4 * cap:
        iu, ju = np.triu_indices(n, k=1)
        iu, ju = iu[ids[iu] != ids[ju]], ju[ids[iu] != ids[ju]]
        if len(iu) > cap:
            pick = rng.choice(len(iu), size=cap, replace=False)
            iu, ju = iu[pick], ju[pick]
    else:  # too many to list: draw pairs (with replacement), keep cross-identity ones
        iu, ju = rng.integers(0, n, size=(2, 2 * cap))
        keep = ids[iu] != ids[ju]
        iu, ju = iu[keep][:cap], ju[keep][:cap]
    return np.sum(emb[iu] * emb[ju], axis=1)


def score_pairs(
    emb: np.ndarray, identities: Sequence[str], kinds: Sequence[str], max_impostor_pairs: int, seed: int = 0
) -> dict[str, np.ndarray]:
    """Scores [n] of the "genuine", "random" and "skilled" pairs described in the module docstring."""
    ids = np.asarray(identities)
    genuine = np.asarray(kinds) == "genuine"
    g_emb, g_ids = emb[genuine], ids[genuine]
    skilled = [g_emb[g_ids == ident] @ emb[s] for s, ident in zip(np.flatnonzero(~genuine), ids[~genuine], strict=True)]
    return {
        "genuine": _genuine_scores(g_emb, g_ids),
        "random": _impostor_scores(g_emb, g_ids, max_impostor_pairs, np.random.default_rng(seed)),
        "skilled": np.concatenate(skilled) if skilled else np.zeros(0, np.float32),
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
        ok = imp.size > 0 and scores["genuine"].size > 0
        out[f"eer_{kind}"] = eer(scores["genuine"], imp)[0] if ok else None
        for far in FARS:
            out[f"tar@far={far:g}_{kind}"] = tar_at_far(scores["genuine"], imp, far)[0] if ok else None
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
    ids = [s.identity for s in crop_set.samples]
    kinds = [s.kind for s in crop_set.samples]
    return pair_metrics(score_pairs(emb, ids, kinds, max_impostor_pairs, seed), metric)

"""Signature score sets from one embedding matrix: the single-reference pair protocol and multi-reference
verification (several genuine references per writer, their scores aggregated, optionally z-normalised).

Single reference (the protocol of the project's real-sample tool): genuine = every pair of a writer's genuine
signatures; skilled = each genuine x each of the writer's forgeries; random = each genuine x the first genuine
of every other writer.

R references: the writer's first R genuine signatures are the references; the probes are the writer's other
genuine signatures (genuine), the writer's forgeries (skilled) and the first non-reference genuine signature of
every other writer (random). A probe's score is an aggregate of its R similarities: mean, max or the mean of
the top k. Per-writer z-norm maps a writer's scores through the mean and standard deviation of the aggregated
scores of a cohort (the other writers' references) against that writer's references: no labels of the probes
are used, so it is usable in deployment (the gallery holds the cohort).

Writer-dependent classifiers (Hafemann et al. 2017, "Learning features for offline handwritten signature
verification using deep convolutional neural networks"): per writer, an RBF support-vector machine separates the
writer's R references (positives) from a cohort of other people's signatures (negatives, e.g. a bundled synthetic
set), with classes weighted to balance; a probe's score is its decision value. `writer_dependent_scores` measures
it under the same R-reference protocol.

Single-reference score normalisation (symmetric S-norm and its adaptive top-k form, as in speaker verification):
`snorm_scores` z-norms each cosine against both images' cosines to a cohort of other people's signatures.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

Aggregation = Literal["mean", "max", "topk"]


@dataclass(frozen=True)
class WriterSet:
    """Rows of an embedding matrix by writer: genuine[w] and forgeries[w] are row indices, in file order."""

    genuine: Mapping[str, Sequence[int]]
    forgeries: Mapping[str, Sequence[int]]

    @property
    def writers(self) -> list[str]:
        return sorted(self.genuine)

    def min_genuine(self) -> int:
        return min((len(v) for v in self.genuine.values()), default=0)


def aggregate(sims: np.ndarray, method: Aggregation = "mean", k: int = 3) -> np.ndarray:
    """Aggregate each row of reference similarities. [N, R] -> [N].

    Args:
        method: "mean", "max", or "topk" (mean of the k largest; k >= R is the mean).
    """
    s = np.asarray(sims, np.float64)
    if s.ndim != 2 or s.shape[1] == 0:
        raise ValueError(f"expected similarities [N, R] with R >= 1, got shape {s.shape}")
    if method == "mean":
        return s.mean(axis=1)
    if method == "max":
        return s.max(axis=1)
    if method == "topk":
        kk = max(1, min(int(k), s.shape[1]))
        return np.sort(s, axis=1)[:, -kk:].mean(axis=1)
    raise ValueError(f"unknown aggregation {method!r}; use mean, max or topk")


def znorm(scores: np.ndarray, cohort: np.ndarray, min_std: float = 1e-3) -> np.ndarray:
    """(scores - mean(cohort)) / std(cohort); `cohort` are impostor scores against the same references."""
    c = np.asarray(cohort, np.float64)
    if c.size < 2:
        raise ValueError("z-norm needs at least 2 cohort scores")
    return (np.asarray(scores, np.float64) - c.mean()) / max(float(c.std()), min_std)


def single_reference_pairs(data: WriterSet) -> dict[str, np.ndarray]:
    """{"genuine", "skilled", "random"}: [P, 2] row pairs of the single-reference protocol (module docstring)."""
    pos: list[tuple[int, int]] = []
    skilled: list[tuple[int, int]] = []
    rand: list[tuple[int, int]] = []
    firsts = {w: data.genuine[w][0] for w in data.writers if len(data.genuine[w])}
    for w in data.writers:
        g = list(data.genuine[w])
        pos += list(itertools.combinations(g, 2))
        for a in g:
            skilled += [(a, f) for f in data.forgeries.get(w, [])]
            rand += [(a, firsts[v]) for v in data.writers if v != w and v in firsts]
    return {
        k: np.array(v, np.int64).reshape(-1, 2) for k, v in (("genuine", pos), ("skilled", skilled), ("random", rand))
    }


def single_reference_scores(emb: np.ndarray, data: WriterSet) -> dict[str, np.ndarray]:
    """{"genuine", "skilled", "random"} cosine scores under the single-reference protocol (module docstring)."""
    e = np.asarray(emb, np.float64)
    return {k: np.einsum("ij,ij->i", e[p[:, 0]], e[p[:, 1]]) for k, p in single_reference_pairs(data).items()}


def _cohort_matrix(cohort: np.ndarray, dim: int) -> np.ndarray:
    """`cohort` as float64 [M >= 2, dim] embeddings of other people's signatures, else ValueError."""
    c = np.asarray(cohort, np.float64)
    if c.ndim != 2 or len(c) < 2 or c.shape[1] != dim:
        raise ValueError(f"the cohort must be [M >= 2, {dim}] embeddings, got shape {c.shape}")
    return c


def snorm_scores(
    emb: np.ndarray, data: WriterSet, cohort: np.ndarray, top_k: int = 0, min_std: float = 1e-3
) -> dict[str, np.ndarray]:
    """Single-reference scores under symmetric S-norm: a pair's cosine s is z-normed against each of its two
    images' cosines to `cohort` [M, D] (other people's signatures), ((s - mu_a) / sd_a + (s - mu_b) / sd_b) / 2.
    With `top_k` > 0, mu and sd come from an image's top_k highest cohort cosines (adaptive S-norm)."""
    e = np.asarray(emb, np.float64)
    sims = e @ _cohort_matrix(cohort, e.shape[1]).T
    if top_k > 0:
        sims = np.sort(sims, axis=1)[:, -min(top_k, sims.shape[1]) :]
    mu, sd = sims.mean(axis=1), np.maximum(sims.std(axis=1), min_std)
    out: dict[str, np.ndarray] = {}
    for kind, p in single_reference_pairs(data).items():
        a, b = p[:, 0], p[:, 1]
        s = np.einsum("ij,ij->i", e[a], e[b])
        out[kind] = 0.5 * ((s - mu[a]) / sd[a] + (s - mu[b]) / sd[b])
    return out


def _reference_protocol(data: WriterSet, n_refs: int) -> Iterator[tuple[str, list[int], dict[str, list[int]]]]:
    """Per writer with a genuine probe left: (writer, its first `n_refs` genuine rows, its probes by kind): the
    writer's other genuine rows, its forgeries, and the first non-reference genuine row of every other writer."""
    if n_refs < 1:
        raise ValueError(f"n_refs must be >= 1, got {n_refs}")
    writers = [w for w in data.writers if len(data.genuine[w]) > n_refs]
    outsider = {w: data.genuine[w][n_refs] for w in writers}  # the random-forgery probe each writer gives
    for w in writers:
        probes = {
            "genuine": list(data.genuine[w][n_refs:]),
            "skilled": list(data.forgeries.get(w, [])),
            "random": [outsider[v] for v in writers if v != w],
        }
        yield w, list(data.genuine[w][:n_refs]), probes


def multi_reference_scores(
    emb: np.ndarray,
    data: WriterSet,
    n_refs: int,
    method: Aggregation = "mean",
    k: int = 3,
    use_znorm: bool = False,
) -> dict[str, np.ndarray]:
    """{"genuine", "skilled", "random"} aggregated scores with `n_refs` references per writer (docstring).

    Writers with fewer than n_refs + 1 genuine signatures are left out (no genuine probe).
    """
    e = np.asarray(emb, np.float64)
    out: dict[str, list[float]] = {"genuine": [], "skilled": [], "random": []}
    protocol = list(_reference_protocol(data, n_refs))
    for w, refs, probes in protocol:
        r = e[refs]
        cohort_rows = [i for v, other, _ in protocol if v != w for i in other]
        cohort = aggregate(e[cohort_rows] @ r.T, method, k) if use_znorm else None
        for kind, rows in probes.items():
            if not rows:
                continue
            s = aggregate(e[rows] @ r.T, method, k)
            out[kind] += list(znorm(s, cohort) if cohort is not None else s)
    return {kind: np.array(v) for kind, v in out.items()}


def writer_dependent_scores(
    emb: np.ndarray, data: WriterSet, n_refs: int, cohort: np.ndarray, c: float = 1.0
) -> dict[str, np.ndarray]:
    """{"genuine", "skilled", "random"} decision values of a per-writer RBF SVM (module docstring) trained on the
    writer's first `n_refs` genuine embeddings against `cohort` [M, D] (embeddings of people who are none of
    the writers), probes as in `multi_reference_scores`.
    """
    from sklearn.svm import SVC

    e = np.asarray(emb, np.float64)
    negatives = _cohort_matrix(cohort, e.shape[1])
    labels = np.r_[np.ones(n_refs), np.zeros(len(negatives))]
    out: dict[str, list[float]] = {"genuine": [], "skilled": [], "random": []}
    for _w, refs, probes in _reference_protocol(data, n_refs):
        svm = SVC(kernel="rbf", C=c, gamma="scale", class_weight="balanced")
        svm.fit(np.vstack([e[refs], negatives]), labels)
        for kind, rows in probes.items():
            if rows:
                out[kind] += list(svm.decision_function(e[rows]))
    return {kind: np.array(v) for kind, v in out.items()}

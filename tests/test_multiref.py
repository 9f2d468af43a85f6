"""Multi-reference signature scores: aggregations, z-norm and the pair protocols against naive loops."""

from __future__ import annotations

import itertools
import statistics

import numpy as np
import pytest

from verify.eval.multiref import (
    WriterSet,
    aggregate,
    multi_reference_scores,
    single_reference_scores,
    snorm_scores,
    writer_dependent_scores,
    znorm,
)


@pytest.fixture
def writer_set(rng: np.random.Generator) -> tuple[np.ndarray, WriterSet]:
    """3 writers x 4 genuine + 2 forgeries, unit embeddings in 8-D."""
    emb = rng.normal(size=(18, 8))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    genuine = {w: list(range(6 * i, 6 * i + 4)) for i, w in enumerate("abc")}
    forgeries = {w: [6 * i + 4, 6 * i + 5] for i, w in enumerate("abc")}
    return emb, WriterSet(genuine, forgeries)


def test_aggregations() -> None:
    s = np.array([[0.1, 0.9, 0.5], [0.3, 0.3, 0.6]])
    np.testing.assert_allclose(aggregate(s, "mean"), [0.5, 0.4])
    np.testing.assert_allclose(aggregate(s, "max"), [0.9, 0.6])
    np.testing.assert_allclose(aggregate(s, "topk", k=2), [0.7, 0.45])
    np.testing.assert_allclose(aggregate(s, "topk", k=10), aggregate(s, "mean"))
    with pytest.raises(ValueError):
        aggregate(s, "median")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        aggregate(np.zeros((2, 0)))
    np.testing.assert_allclose(znorm(np.array([1.0, 3.0]), np.array([1.0, 3.0])), [-1.0, 1.0])


def test_single_reference_equals_a_naive_loop(writer_set: tuple[np.ndarray, WriterSet]) -> None:
    emb, data = writer_set
    out = single_reference_scores(emb, data)
    pos, sk, rd = [], [], []
    for w in "abc":
        for x, y in itertools.combinations(data.genuine[w], 2):
            pos.append(emb[x] @ emb[y])
        for x in data.genuine[w]:
            sk += [emb[x] @ emb[f] for f in data.forgeries[w]]
            rd += [emb[x] @ emb[data.genuine[v][0]] for v in "abc" if v != w]
    assert (len(out["genuine"]), len(out["skilled"]), len(out["random"])) == (18, 24, 24)
    np.testing.assert_allclose(out["genuine"], pos)
    np.testing.assert_allclose(out["skilled"], sk)
    np.testing.assert_allclose(out["random"], rd)


def test_snorm_equals_a_naive_loop(writer_set: tuple[np.ndarray, WriterSet]) -> None:
    emb, data = writer_set
    cohort = np.random.default_rng(5).normal(size=(7, emb.shape[1]))
    cohort /= np.linalg.norm(cohort, axis=1, keepdims=True)
    for top_k in (0, 3):
        out = snorm_scores(emb, data, cohort, top_k)

        def norm(x: int, y: int, top_k: int = top_k) -> float:
            s = float(emb[x] @ emb[y])
            zs = []
            for i in (x, y):
                c = sorted(float(emb[i] @ v) for v in cohort)
                c = c[-top_k:] if top_k else c
                zs.append((s - statistics.fmean(c)) / max(statistics.pstdev(c), 1e-3))
            return sum(zs) / 2

        pos, sk, rd = [], [], []
        for w in "abc":
            pos += [norm(x, y) for x, y in itertools.combinations(data.genuine[w], 2)]
            for x in data.genuine[w]:
                sk += [norm(x, f) for f in data.forgeries[w]]
                rd += [norm(x, data.genuine[v][0]) for v in "abc" if v != w]
        np.testing.assert_allclose(out["genuine"], pos)
        np.testing.assert_allclose(out["skilled"], sk)
        np.testing.assert_allclose(out["random"], rd)
    assert not np.allclose(snorm_scores(emb, data, cohort, 3)["genuine"], snorm_scores(emb, data, cohort)["genuine"])
    with pytest.raises(ValueError, match="cohort"):
        snorm_scores(emb, data, cohort[:1])


def test_multi_reference_equals_a_naive_loop(writer_set: tuple[np.ndarray, WriterSet]) -> None:
    emb, data = writer_set
    out = multi_reference_scores(emb, data, n_refs=2, method="max")
    pos, sk, rd = [], [], []
    for w in "abc":
        refs = emb[data.genuine[w][:2]]
        pos += [max(emb[p] @ refs.T) for p in data.genuine[w][2:]]
        sk += [max(emb[f] @ refs.T) for f in data.forgeries[w]]
        rd += [max(emb[data.genuine[v][2]] @ refs.T) for v in "abc" if v != w]
    np.testing.assert_allclose(out["genuine"], pos)
    np.testing.assert_allclose(out["skilled"], sk)
    np.testing.assert_allclose(out["random"], rd)
    z = multi_reference_scores(emb, data, n_refs=2, method="mean", use_znorm=True)
    raw = multi_reference_scores(emb, data, n_refs=2, method="mean")
    cohort = aggregate(emb[data.genuine["b"][:2] + data.genuine["c"][:2]] @ emb[data.genuine["a"][:2]].T)
    np.testing.assert_allclose(z["genuine"][:2], (raw["genuine"][:2] - cohort.mean()) / cohort.std())
    assert multi_reference_scores(emb, data, n_refs=4)["genuine"].size == 0  # no writer has a genuine probe left


def test_writer_dependent_scores_follow_the_protocol_and_separate_writers(rng: np.random.Generator) -> None:
    """Per writer, an SVM of its references against the cohort: the probes are those of multi_reference_scores,
    each score is that writer's SVM's decision value (a naive loop with sklearn), and writers drawn around distinct
    centres are told apart."""
    from sklearn.svm import SVC

    centres = rng.normal(size=(4, 8)) * 3
    emb = np.vstack([c + 0.3 * rng.normal(size=(6, 8)) for c in centres])
    genuine = {w: list(range(6 * i, 6 * i + 4)) for i, w in enumerate("abcd")}
    forgeries = {w: [6 * i + 4, 6 * i + 5] for i, w in enumerate("abcd")}
    data = WriterSet(genuine, forgeries)
    cohort = rng.normal(size=(40, 8)) * 3
    out = writer_dependent_scores(emb, data, n_refs=2, cohort=cohort)
    svm = SVC(kernel="rbf", gamma="scale", class_weight="balanced").fit(
        np.vstack([emb[genuine["a"][:2]], cohort]), np.r_[np.ones(2), np.zeros(40)]
    )
    np.testing.assert_allclose(out["genuine"][:2], svm.decision_function(emb[genuine["a"][2:]]))
    np.testing.assert_allclose(out["random"][:3], svm.decision_function(emb[[genuine[v][2] for v in "bcd"]]))
    assert {k: len(v) for k, v in out.items()} == {"genuine": 8, "skilled": 8, "random": 12}
    assert out["genuine"].min() > out["random"].max()  # distinct writers are told apart
    with pytest.raises(ValueError, match="cohort"):
        writer_dependent_scores(emb, data, n_refs=2, cohort=cohort[:, :4])

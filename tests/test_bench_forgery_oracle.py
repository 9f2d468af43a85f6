"""The pen-trace oracle bench: its DTW against a naive reference, its paths, and a run on a tiny held-out set whose
images it checks against the generator's (the oracle must score the very samples the models see)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench import bench_forgery_oracle as oracle
from training.synth_sets import SynthSetSpec, write_synth_set
from verify.synth.generator import NameSignatureGenerator

ROOT = Path(__file__).resolve().parents[1]


def naive_dtw(a: np.ndarray, b: np.ndarray) -> float:
    n, m = len(a), len(b)
    acc = np.full((n + 1, m + 1), np.inf)
    acc[0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            cost = float(np.linalg.norm(a[i - 1] - b[j - 1]))
            acc[i, j] = cost + min(acc[i - 1, j - 1], acc[i - 1, j], acc[i, j - 1])
    return float(acc[n, m] / (n + m))


@pytest.mark.parametrize(("n", "m"), [(1, 1), (1, 7), (9, 4), (23, 31)])
def test_dtw_matches_a_naive_double_loop(n: int, m: int) -> None:
    rng = np.random.default_rng(n * 100 + m)
    a, b = rng.normal(size=(n, 2)), rng.normal(size=(m, 2))
    assert oracle.dtw_distance(a, b) == pytest.approx(naive_dtw(a, b), rel=1e-12)
    assert oracle.dtw_distance(a, a) == 0.0
    stretched = np.repeat(a, 3, axis=0)  # the same path, each point held three times: warps onto it at no cost
    assert oracle.dtw_distance(a, stretched) == 0.0


def test_paths_are_centred_unit_scale_and_ignore_position_and_size() -> None:
    traces, _ = NameSignatureGenerator(seed=3).traces(0, "genuine", 0)
    for path in oracle.ORACLES.values():
        p = path(traces)
        assert p.ndim == 2 and p.shape[1] == 2 and len(p) > 20
        assert np.allclose(p.mean(axis=0), 0.0, atol=1e-9)
        assert np.sqrt((p**2).sum(axis=1).mean()) == pytest.approx(1.0)
        moved = [type(t)(xy=2.5 * t.xy + np.array([7.0, -3.0]), width=t.width) for t in traces]
        q = path(moved)
        assert len(q) >= len(p) and oracle.dtw_distance(p, q) < 0.02


def test_oracle_eers_read_the_single_and_multi_reference_pairs() -> None:
    """Two writers, 6 genuine + 2 skilled: genuine pairs at -1, forgeries at -2 except one forgery of writer 0 that
    one reference (the last) sees as genuine."""
    g, s = 6, 2
    sim = np.full((2, g + s, g + s), -1.0)
    sim[:, :, g:] = sim[:, g:, :] = -2.0
    assert oracle.oracle_eers(sim, g, 5) == {"skilled": 0.0, "skilled_5ref": 0.0}
    sim[0, 4, g] = sim[0, g, 4] = -0.5  # reference 4 takes forgery g for genuine
    got = oracle.oracle_eers(sim, g, 5)
    assert got["skilled"] == pytest.approx(1 / 24)  # 1 of 2 x 6 x 2 genuine/forgery pairs
    assert got["skilled_5ref"] == pytest.approx(1 / 4)  # the max over refs 0-4: 1 of 4 forgery probes
    sim[0, 5, g] = sim[0, g, 5] = -0.5  # genuine 5 is a probe, not a reference: the 5-reference score ignores it
    assert oracle.oracle_eers(sim, g, 5)["skilled_5ref"] == pytest.approx(1 / 4)


def test_the_bench_scores_a_tiny_held_out_set_and_refuses_a_set_that_is_not_its_specs(tmp_path: Path) -> None:
    spec = SynthSetSpec(writers=2, genuine=6, skilled=2, simple=0, seed=5)
    root = write_synth_set(tmp_path / "heldout", spec, progress=False)
    out = tmp_path / "result"
    hog = ROOT / "assets" / "models" / "signature-hog"
    assert oracle.main(["--synth", str(root), "--model", str(hog), "--out", str(out)]) == 0
    rows = {r["scorer"]: r for r in json.loads(out.with_suffix(".json").read_text())["rows"]}
    assert set(rows) == {f"oracle: {k}" for k in oracle.ORACLES} | {"signature-hog"}
    assert all(0.0 <= r["skilled"] <= 1.0 and 0.0 <= r["skilled_5ref"] <= 1.0 for r in rows.values())
    assert "| signature-hog |" in out.with_suffix(".md").read_text()

    spec_file = root / "spec.json"
    spec_file.write_text(json.dumps({**json.loads(spec_file.read_text()), "seed": 6}))  # images from seed 5
    with pytest.raises(SystemExit):
        oracle.main(["--synth", str(root), "--model", str(hog), "--out", str(out)])

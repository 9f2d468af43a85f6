"""bench_gate_flag: which protocol pairs hold a flagged image (against a naive enumeration of the protocol), the
errors of each part at a threshold, and a run on a tiny set where one "signature" is a face photo."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import numpy as np

from bench.bench_gate_flag import flagged_pairs, main, split_errors
from verify.eval.multiref import WriterSet
from verify.models.defaults import assets_dir


def _naive(flags: list[bool], data: WriterSet) -> dict[str, list[bool]]:
    out: dict[str, list[bool]] = {"genuine": [], "skilled": [], "random": []}
    firsts = {w: data.genuine[w][0] for w in data.writers}
    for w in data.writers:
        out["genuine"] += [flags[a] or flags[b] for a, b in itertools.combinations(data.genuine[w], 2)]
        for a in data.genuine[w]:
            out["skilled"] += [flags[a] or flags[f] for f in data.forgeries.get(w, [])]
            out["random"] += [flags[a] or flags[firsts[v]] for v in data.writers if v != w]
    return out


def test_flagged_pairs_equal_a_naive_enumeration_of_the_protocol() -> None:
    rng = np.random.default_rng(0)
    data = WriterSet(
        genuine={"a": [0, 1, 2], "b": [5, 6, 7, 8], "c": [10, 11]}, forgeries={"a": [3, 4], "b": [9], "c": []}
    )
    for _ in range(20):
        flags = rng.random(12) < 0.3
        got = flagged_pairs(flags, data)
        want = _naive(list(flags), data)
        assert {k: v.tolist() for k, v in got.items()} == want


def test_split_errors_counts_each_part_at_the_threshold() -> None:
    scores = {"genuine": np.array([0.9, 0.4, 0.8]), "skilled": np.array([0.7, 0.2]), "random": np.array([0.1, 0.6])}
    flagged = {"genuine": np.array([False, True, False]), "skilled": np.array([True, False]),
               "random": np.array([False, False])}  # fmt: skip
    parts = split_errors(scores, flagged, 0.5)
    clean, flag = parts["not flagged"], parts["flagged"]
    assert clean["n"] == {"genuine": 2, "skilled": 1, "random": 2} and clean["frr"] == 0.0
    assert clean["far_skilled"] == 0.0 and clean["far_random"] == 0.5 and clean["eer_skilled"] == 0.0
    assert flag["n"] == {"genuine": 1, "skilled": 1, "random": 0} and flag["frr"] == 1.0
    assert flag["far_skilled"] == 1.0 and flag["far_random"] is None and flag["eer_random"] is None


def test_a_face_among_the_signatures_is_flagged_and_still_scored(tmp_path: Path) -> None:
    from verify.synth import generate_dataset

    data = generate_dataset(tmp_path / "set", 3, 3, 1, seed=3, generator="v2", natural_size=True, progress=False)
    shutil.copy(assets_dir() / "demo" / "faces" / "obama.jpg", data / "full_org" / "original_1_2.png")
    out = tmp_path / "res"
    assert main(["--indep", str(data), "--real", str(tmp_path / "none"), "--out", str(out)]) == 0
    got = json.loads(out.with_suffix(".json").read_text())["sets"]["independent set (synthetic)"]
    assert got["scans"] == 12 and got["flagged_genuine"] >= 1
    flagged = got["parts"]["flagged"]["n"]
    assert flagged["genuine"] >= 2 and flagged["random"] >= 2  # at least the photo's own pairs
    assert sum(p["n"]["genuine"] for p in got["parts"].values()) == 3 * 3
    assert "flagged" in out.with_suffix(".md").read_text()

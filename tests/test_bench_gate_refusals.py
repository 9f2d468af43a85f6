"""bench_gate_refusals' breakdown of the independent set's refusals by the writer's hand, on a real gate."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np

from bench import bench_gate_refusals as bench

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "assets" / "demo" / "signatures"


def test_refusals_are_counted_by_hand_and_tabled(tmp_path: Path) -> None:
    """Writer 1 (hand "Script") holds two demo signatures; writer 2 (hand "Block") one demo signature and a blank
    page, which every gate refuses."""
    indep = tmp_path / "indep"
    (indep / "full_org").mkdir(parents=True)
    shutil.copy(DEMO / "writer-01" / "genuine_1.png", indep / "full_org" / "original_1_1.png")
    shutil.copy(DEMO / "writer-01" / "genuine_2.png", indep / "full_org" / "original_1_2.png")
    shutil.copy(DEMO / "writer-02" / "genuine_1.png", indep / "full_org" / "original_2_1.png")
    cv2.imwrite(str(indep / "full_org" / "original_2_2.png"), np.full((120, 300), 255, np.uint8))
    writers = [{"writer": 1, "hand": {"font": "Script.ttf"}}, {"writer": 2, "hand": {"font": "Block.otf"}}]
    (indep / "PROVENANCE.json").write_text(json.dumps({"writers": writers}))

    out = tmp_path / "result"
    model = ROOT / "assets" / "models" / "signature-student"
    assert (
        bench.main(["--model", str(model), "--indep", str(indep), "--real", str(tmp_path / "none"), "--out", str(out)])
        == 0
    )
    rows = {r["set"]: r for r in json.loads(out.with_suffix(".json").read_text())["rows"]}
    by_hand = rows[bench.INDEP]["by_hand"]
    assert by_hand == {"Script": [0, 2], "Block": [1, 2]}  # the demo signatures pass, the blank page does not
    assert rows[bench.INDEP]["refused"] == 1 and "by_hand" not in rows["demo signatures"]
    text = out.with_suffix(".md").read_text()
    assert "| hand | signature-student |" in text
    assert text.index("| Block | 1 of 2 |") < text.index("| Script | 0 of 2 |")  # most refused first

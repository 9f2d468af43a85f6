"""The independent evaluation set builder: CEDAR layout, seeded bytes, writers and forgeries as described."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.make_indep_set import FONT_NAMES, build, find_fonts
from verify.data import load_signature_dataset


@pytest.fixture(scope="module")
def fonts() -> list[Path]:
    found = find_fonts() or find_fonts(("DejaVuSans", "LiberationSans-Regular"))  # any TrueType font will do here
    if not found:
        pytest.skip("no TrueType font installed")
    return found[:3]


def test_layout_provenance_and_same_seed_same_bytes(tmp_path: Path, fonts: list[Path]) -> None:
    a = build(tmp_path / "a", writers=2, genuine=2, forgeries=2, seed=3, fonts=fonts)
    samples = load_signature_dataset(a, "cedar")
    assert sorted((s.identity, s.kind) for s in samples) == sorted(
        [(w, k) for w in ("1", "2") for k in ("genuine", "genuine", "skilled", "skilled")]
    )
    prov = json.loads((a / "PROVENANCE.json").read_text())
    assert "never train" in prov["what"] and len(prov["writers"]) == 2 and prov["fonts"]
    b = build(tmp_path / "b", writers=2, genuine=2, forgeries=2, seed=3, fonts=fonts)
    for s in samples:
        assert s.path.read_bytes() == (b / s.path.relative_to(a)).read_bytes()


def test_no_fonts_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="fonts"):
        build(tmp_path, writers=1, genuine=1, forgeries=1, seed=0, fonts=[])
    assert "DancingScript-Regular" in FONT_NAMES

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


def test_font_coverage_reads_the_fonts_glyphs(fonts: list[Path]) -> None:
    from bench.make_indep_set import LATIN, font_covers

    assert all(font_covers(f, LATIN) for f in fonts)
    assert not font_covers(fonts[0], "Anna \U000f0000")  # a private-use code point no handwriting font has
    assert font_covers(fonts[0], " \t")  # spaces need no glyph


def test_every_writer_is_written_in_a_font_that_has_all_its_letters(
    tmp_path: Path, fonts: list[Path], monkeypatch
) -> None:
    """A font without a glyph draws a box: the builder draws each writer's (and forger's) font among those covering
    the name. Here the first font is made to lack "ö" and "ü", and every surname has one of them but one."""
    import bench.make_indep_set as indep

    if len(fonts) < 2:
        pytest.skip("needs two fonts")
    real = indep._glyphs
    monkeypatch.setattr(indep, "_glyphs", lambda f: real(f) - {ord("ö"), ord("ü")} if f == fonts[0] else real(f))
    monkeypatch.setattr(indep, "LAST", ("Bergström", "Grünwald", "Müller", "Söderberg", "Keller"))
    out = indep.build(tmp_path / "c", writers=5, genuine=1, forgeries=4, seed=5, fonts=fonts)
    people = json.loads((out / "PROVENANCE.json").read_text())["writers"]
    used = {p["name"]: p["hand"]["font"] for p in people}
    assert all(font != fonts[0].name for name, font in used.items() if "ö" in name or "ü" in name), used
    assert len(used) == 5


def test_a_name_no_font_can_write_is_a_clear_error(tmp_path: Path, fonts: list[Path], monkeypatch) -> None:
    import bench.make_indep_set as indep

    monkeypatch.setattr(indep, "LAST", ("Zh\U000f0000ng",))
    with pytest.raises(SystemExit, match="every letter"):
        indep.build(tmp_path, writers=1, genuine=1, forgeries=1, seed=0, fonts=fonts)

"""Generator v2 (name signatures): determinism, layouts, forgeries, scan framing, the training stream, the CLI."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from verify.errors import ConfigError
from verify.synth import NameSignatureGenerator, ScanConfig, contact_sheet
from verify.synth.compose import compose
from verify.synth.glyphs import ascii_text, glyph
from verify.synth.motion import GENUINE, execute
from verify.synth.names import LAYOUTS, PersonName, signed_words

CANVAS = ScanConfig(canvas=(48, 72))


def test_same_seed_same_pixels_and_other_seed_differs() -> None:
    a = NameSignatureGenerator(seed=3, scan=CANVAS)
    b = NameSignatureGenerator(seed=3, scan=CANVAS)
    for kind in ("genuine", "skilled", "simple"):
        first = a.render(5, kind, 1)
        assert first.dtype == np.uint8 and first.shape == (48, 72, 3)
        assert np.array_equal(first, b.render(5, kind, 1))
    assert not np.array_equal(a.render(5, "genuine", 1), NameSignatureGenerator(seed=4, scan=CANVAS).render(5))


def test_writer_is_independent_of_other_writers_and_call_order() -> None:
    gen = NameSignatureGenerator(seed=0, scan=CANVAS)
    late = gen.render(9, "skilled", 2)
    for w in range(3):
        gen.render(w, "genuine", 0)
    assert np.array_equal(late, NameSignatureGenerator(seed=0, scan=CANVAS).render(9, "skilled", 2))
    assert gen.writer(9) == gen.writer(9)


def test_all_caps_writers_change_only_the_print_writers_they_pick() -> None:
    from verify.synth.glyphs import PRINT_FONTS

    plain, caps = NameSignatureGenerator(seed=4), NameSignatureGenerator(seed=4, all_caps_share=1.0)
    picked = 0
    for w in range(40):
        a, b = plain.writer(w), caps.writer(w)
        if a.hand.font in PRINT_FONTS:
            assert b.words == tuple(x.upper() for x in a.words) and b.hand.caps_font == a.hand.font
            picked += 1
        else:
            assert b == a and np.array_equal(plain.render(w, "genuine", 1), caps.render(w, "genuine", 1))
    assert 5 <= picked <= 30  # about a third of writers have a print hand
    assert NameSignatureGenerator(seed=4, all_caps_share=0.0).writer(3) == plain.writer(3)
    with pytest.raises(ConfigError, match="all_caps_share"):
        NameSignatureGenerator(all_caps_share=1.5)


def test_signed_words_follow_the_layout() -> None:
    name = PersonName(given="Anna Maria", family="van der Berg")
    assert signed_words(name, "full", dots=False) == ["Anna", "van", "der", "Berg"]
    assert signed_words(name, "initial_surname", dots=True) == ["A.M.", "van", "der", "Berg"]
    assert signed_words(name, "surname", dots=True) == ["van", "der", "Berg"]
    assert signed_words(name, "initials", dots=False) == ["AMB"]
    assert signed_words(name, "given_initial", dots=True) == ["Anna", "B."]
    assert set(LAYOUTS) == {"full", "initial_surname", "surname", "initials", "given_initial"}
    assert ascii_text("Łęcka-Müller Ørsted") == "Lecka-Muller Orsted"


def test_glyphs_are_in_x_height_units_and_words_get_wider_with_letters() -> None:
    x = glyph("cursive", "x")
    pts = np.concatenate(x.strokes)
    assert pts[:, 1].min() == pytest.approx(0.0) and pts[:, 1].max() == pytest.approx(1.0)
    assert len(glyph("scriptc", "H").strokes) < 4  # doubled lines of the bold font dropped
    gen = NameSignatureGenerator(seed=1)
    hand = gen.writer(2).hand
    rng = np.random.default_rng(0)
    short = np.concatenate(compose(["Al"], hand, rng, jitter=0.0))
    long = np.concatenate(compose(["Alexandra"], hand, rng, jitter=0.0))
    assert np.ptp(long[:, 0]) > np.ptp(short[:, 0]) + 2.0
    with pytest.raises(ConfigError, match="unknown Hershey font"):
        glyph("gothic", "a")  # type: ignore[arg-type]


def _ink_profile(image: np.ndarray) -> np.ndarray:
    """Ink crop resized to 32 x 96, 0 (paper) .. 1 (ink), for comparing shapes."""
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    ink = np.clip((np.median(gray) - gray) / 60.0, 0, 1)
    ys, xs = np.nonzero(ink > 0.3)
    crop = ink[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    return cv2.GaussianBlur(cv2.resize(crop, (96, 32), interpolation=cv2.INTER_AREA), (0, 0), 1.5)


def _trace_shape(gen: NameSignatureGenerator, writer: int, kind: str, index: int) -> np.ndarray:
    traces, _ = gen.traces(writer, kind, index)  # type: ignore[arg-type]
    canvas = np.zeros((32, 96), np.float32)
    pts = np.concatenate([t.xy for t in traces])
    lo, span = pts.min(0), np.ptp(pts, axis=0) + 1e-6
    for t in traces:
        p = (t.xy - lo) / span * [95, 31]
        p[:, 1] = 31 - p[:, 1]
        cv2.polylines(canvas, [np.round(p * 8).astype(np.int32)], False, 1.0, 1, cv2.LINE_AA, 3)
    return cv2.GaussianBlur(canvas, (0, 0), 1.5).ravel()


def _dist(a: np.ndarray, b: np.ndarray) -> float:
    return float(1.0 - np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-9))


def test_forgeries_differ_from_genuines_but_skilled_ones_are_close() -> None:
    gen = NameSignatureGenerator(seed=0)
    genuine_pairs, skilled, simple, others = [], [], [], []
    for w in range(6):
        ref = _trace_shape(gen, w, "genuine", 0)
        genuine_pairs.append(_dist(ref, _trace_shape(gen, w, "genuine", 1)))
        skilled.append(_dist(ref, _trace_shape(gen, w, "skilled", 0)))
        simple.append(_dist(ref, _trace_shape(gen, w, "simple", 0)))
        others.append(_dist(ref, _trace_shape(gen, w + 10, "genuine", 0)))
        assert not np.array_equal(gen.render(w, "genuine", 0), gen.render(w, "skilled", 0))
    assert np.median(genuine_pairs) < np.median(skilled) < np.median(others)
    assert np.median(skilled) < np.median(simple)


def test_skilled_forgers_are_slower_than_the_writer() -> None:
    gen = NameSignatureGenerator(seed=2)
    for w in range(3):
        genuine, _ = gen.traces(w, "genuine", 0)
        forged, _ = gen.traces(w, "skilled", 0)
        assert sum(len(t.xy) for t in forged) > sum(len(t.xy) for t in genuine)  # more samples at a fixed rate


def test_tight_crops_vary_in_size_and_canvas_is_exact() -> None:
    gen = NameSignatureGenerator(seed=0, scan=ScanConfig(max_side=160))
    shapes = {gen.render(w, "genuine", 0).shape for w in range(6)}
    assert len(shapes) > 1 and all(s[2] == 3 and min(s[:2]) >= 8 and max(s[:2]) <= 161 for s in shapes)
    with pytest.raises(ConfigError, match="too small"):
        ScanConfig(canvas=(8, 8))
    with pytest.raises(ConfigError, match=">= 0"):
        gen.render(-1)


def test_stream_yields_writer_groups_deterministically_across_workers() -> None:
    import torch
    from torch.utils.data import DataLoader

    from verify.synth.stream import SyntheticSignatureStream

    def to_tensor(img: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(cv2.resize(img, (40, 24))).permute(2, 0, 1)

    stream = SyntheticSignatureStream(seed=1, genuine=2, skilled=1, simple=1, groups=4, transform=to_tensor)
    items = list(stream)
    assert len(items) == 4 * stream.group_size == len(stream)
    assert [k for _, _, k in items[:4]] == [0, 0, 1, 2] and len({w for _, w, _ in items[:4]}) == 1
    assert len({w for _, w, _ in items}) == 4
    batches = list(DataLoader(stream, batch_size=stream.group_size, num_workers=0))
    assert batches[0][0].shape == (4, 3, 24, 40)
    assert torch.equal(batches[0][0][0], items[0][0])
    pool = SyntheticSignatureStream(seed=1, genuine=2, skilled=0, simple=0, writers=3, first_writer=100, groups=6)
    assert {w for _, w, _ in pool} <= {100, 101, 102}


def test_contact_sheet_of_colour_crops_of_different_sizes() -> None:
    gen = NameSignatureGenerator(seed=0)
    groups = [([gen.render(w, "genuine", i) for i in range(2)], [gen.render(w, "skilled", 0)]) for w in range(2)]
    sheet = contact_sheet(groups, writers=2, per_kind=2, gap=4)
    assert sheet.ndim == 3 and sheet.shape[0] == 2 * 96 + 4


def test_cli_writes_v2_dataset_with_preview(tmp_path: Path) -> None:
    out = tmp_path / "v2"
    cmd = [sys.executable, "-m", "verify.cli", "synth", "signatures", "--generator", "v2", "--writers", "2"]
    cmd += ["--genuine", "2", "--forgeries", "1", "--height", "48", "--width", "72", "--out", str(out)]
    done = subprocess.run([*cmd, "--preview", "--json"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["images"] == 6
    image = cv2.imread(str(out / "full_forg" / "forgeries_2_1.png"), cv2.IMREAD_UNCHANGED)
    assert image is not None and image.shape == (48, 72, 3)
    assert (out / "preview.png").is_file()


def test_execute_traces_stay_near_the_intended_path() -> None:
    gen = NameSignatureGenerator(seed=0)
    hand = gen.writer(1).hand
    rng = np.random.default_rng(0)
    comps = compose(["Ana"], hand, rng)
    traces = execute(comps, hand, GENUINE, rng)
    intended, written = np.concatenate(comps), np.concatenate([t.xy for t in traces])
    tolerance = 0.15 * np.ptp(intended, axis=0).max()  # the lognormal overlap rounds corners, not more
    assert np.abs(intended.min(0) - written.min(0)).max() < tolerance
    assert np.abs(intended.max(0) - written.max(0)).max() < tolerance


def test_session_share_one_scans_every_image_of_a_writer_alike() -> None:
    same = NameSignatureGenerator(seed=0, scan=ScanConfig(canvas=(48, 72), session_share=1.0, max_rotation=0.0))
    paper = [
        np.median(same.render(4, kind, i).reshape(-1, 3), axis=0) for kind in ("genuine", "skilled") for i in (0, 1)
    ]
    assert np.ptp(np.asarray(paper), axis=0).max() < 12  # one paper tone (per-image shading and noise aside)
    binary = NameSignatureGenerator(seed=0, scan=ScanConfig(binary_share=1.0, jpeg_share=0.0, session_share=0.0))
    assert set(np.unique(binary.render(3))) <= {0, 255}


def test_stream_redraws_samples_the_transform_rejects_or_blanks() -> None:
    from verify.errors import InvalidImageError
    from verify.synth.stream import SyntheticSignatureStream

    calls = {"n": 0}

    def flaky(img: np.ndarray) -> np.ndarray:
        calls["n"] += 1
        if calls["n"] % 3 == 1:
            raise InvalidImageError("no ink found")
        return np.zeros(1) if calls["n"] % 3 == 2 else np.ones(1)

    stream = SyntheticSignatureStream(seed=0, genuine=2, skilled=0, simple=0, groups=1, transform=flaky)
    out = list(stream)
    assert len(out) == 2 and all(float(x.max()) == 1.0 for x, _, _ in out) and calls["n"] == 6


def test_synth_set_cli_writes_the_cedar_layout_as_the_generator_renders(tmp_path: Path) -> None:
    """`python -m training.synth_sets`: genuine, then skilled and simple forgeries per writer, with a manifest;
    the pixels are the generator's (with the same all-caps share)."""
    out = tmp_path / "set"
    cmd = [sys.executable, "-m", "training.synth_sets", "--out", str(out), "--writers", "2", "--genuine", "2"]
    cmd += ["--skilled", "1", "--simple", "1", "--seed", "4", "--all-caps-share", "0.5", "--workers", "1"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader((out / "manifest.csv").open()))
    assert [(r["writer"], r["kind"], r["forgery"]) for r in rows[:4]] == [
        ("1", "genuine", ""), ("1", "genuine", ""), ("1", "skilled", "skilled"), ("1", "skilled", "simple"),
    ]  # fmt: skip
    assert len(rows) == 8 and all((out / r["path"]).is_file() for r in rows)
    gen = NameSignatureGenerator(seed=4, all_caps_share=0.5)
    image = cv2.cvtColor(cv2.imread(str(out / "full_forg" / "forgeries_2_2.png")), cv2.COLOR_BGR2RGB)
    assert np.array_equal(image, gen.render(1, "simple", 0))


def test_a_written_set_is_kept_only_for_the_spec_it_was_written_from(tmp_path: Path) -> None:
    """`write_synth_set` skips a set written from the same spec, and writes it again (old images gone) for another
    spec or when the set's spec is unknown (no spec.json, as from before the record)."""
    from training.synth_sets import SPEC_FILE, SynthSetSpec, write_synth_set

    root = tmp_path / "set"
    spec = SynthSetSpec(writers=2, genuine=1, skilled=1, simple=0, seed=0)
    write_synth_set(root, spec, progress=False)
    stamp = (root / "manifest.csv").stat().st_mtime_ns
    write_synth_set(root, spec, progress=False)
    assert (root / "manifest.csv").stat().st_mtime_ns == stamp  # same spec: kept
    write_synth_set(root, SynthSetSpec(writers=1, genuine=1, skilled=1, simple=0, seed=0), progress=False)
    assert sorted(p.name for p in (root / "full_org").iterdir()) == ["original_1_1.png"]  # writer 2's image gone
    assert len((root / "manifest.csv").read_text().splitlines()) == 1 + 2
    (root / SPEC_FILE).unlink()
    write_synth_set(root, spec, progress=False)
    assert len(list((root / "full_org").iterdir())) == 2 and (root / SPEC_FILE).is_file()

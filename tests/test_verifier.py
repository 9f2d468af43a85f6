"""The verification pipeline on a tiny model: decisions, rejections, the embedding cache, gallery questions."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from verify.decision import MATCH, NO_MATCH, REJECTED, UNKNOWN
from verify.errors import ConfigError, InvalidImageError, OutOfDistributionError
from verify.gallery import FaissGallery
from verify.verifier import Verifier


def _sig(root: Path, writer: int, i: int) -> Path:
    return root / "full_org" / f"original_{writer}_{i}.png"


@pytest.fixture
def verifier(tiny_model: Path) -> Verifier:
    return Verifier.from_path(tiny_model)


def test_same_image_matches_with_score_one(verifier: Verifier, synth_signatures: Path) -> None:
    result = verifier.match(_sig(synth_signatures, 1, 1), _sig(synth_signatures, 1, 1))
    assert result.decision == MATCH
    assert result.score == pytest.approx(1.0, abs=1e-5)
    assert result.threshold == 0.9 and result.threshold_source == "test fixture"
    assert len(result.crops) == 2 and result.crops[0].shape == (32, 48)
    assert result.timings_ms["total_ms"] > 0


def test_threshold_decides(tiny_model: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a.png", tmp_path / "b.png"  # two clearly different ink shapes (an untrained net at 32x48
    page = np.full((96, 144), 240, np.uint8)  # px may map two thin synthetic signatures to one point)
    cv2.imwrite(str(a), cv2.ellipse(page.copy(), (72, 48), (50, 20), 0, 0, 360, 20, 6))
    cv2.imwrite(str(b), cv2.line(cv2.line(page.copy(), (20, 10), (60, 85), 20, 6), (60, 85), (130, 20), 20, 6))
    score = Verifier.from_path(tiny_model).match(a, b).score
    assert score is not None and score < 1.0
    assert Verifier.from_path(tiny_model, threshold=score - 1e-4).match(a, b).decision == MATCH
    assert Verifier.from_path(tiny_model, threshold=score + 1e-4).match(a, b).decision == NO_MATCH


def test_blank_page_is_rejected_not_scored(verifier: Verifier, synth_signatures: Path, tmp_path: Path) -> None:
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((64, 96), 250, np.uint8))
    result = verifier.match(_sig(synth_signatures, 1, 1), blank)
    assert result.decision == REJECTED and result.score is None
    assert "input 2" in result.reason and "not a signature" in result.reason
    with pytest.raises(OutOfDistributionError, match="blank"):
        verifier.embed_or_raise(blank)


def test_corrupt_input_raises_a_typed_error(verifier: Verifier, tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(InvalidImageError, match=r"bad\.png"):
        verifier.match(bad, bad)


def test_embeddings_are_cached_by_content(verifier: Verifier, synth_signatures: Path) -> None:
    path = _sig(synth_signatures, 1, 1)
    first = verifier.probe(path)
    again = verifier.probe(path.read_bytes())
    assert again is first  # same pixels -> same cached probe, no second embedding


def test_model_without_threshold_needs_one(tmp_path: Path, tiny_model_factory) -> None:
    path = tiny_model_factory(tmp_path / "m")
    card = json.loads((path / "model.json").read_text())
    del card["calibration"]
    (path / "model.json").write_text(json.dumps(card))
    with pytest.raises(ConfigError, match="no calibrated threshold"):
        Verifier.from_path(path)
    assert Verifier.from_path(path, threshold=0.5).threshold == 0.5


def test_open_set_identify_and_claims(verifier: Verifier, synth_signatures: Path, tmp_path: Path) -> None:
    model = verifier.model
    with FaissGallery.create(tmp_path / "g", dim=model.dim, fingerprint=model.fingerprint) as gallery:
        for w in (1, 2):
            probes = [verifier.probe(_sig(synth_signatures, w, i)) for i in (1, 2)]
            gallery.enroll(f"writer{w}", np.stack([p.embedding for p in probes]))
        hit = verifier.identify(_sig(synth_signatures, 1, 1), gallery)
        assert (hit.decision, hit.identity) == (MATCH, "writer1")
        assert hit.score == pytest.approx(1.0, abs=1e-5)
        strict = Verifier(model, threshold=1.01)
        miss = strict.identify(_sig(synth_signatures, 3, 1), gallery)
        assert (miss.decision, miss.identity) == (UNKNOWN, None)
        assert miss.candidates, "unknown still lists the nearest candidates"
        claim = verifier.verify_claim(_sig(synth_signatures, 2, 2), gallery, "writer2")
        assert claim.decision == MATCH and claim.score == pytest.approx(1.0, abs=1e-5)


def test_per_identity_threshold_overrides_the_model(verifier: Verifier, synth_signatures: Path, tmp_path: Path) -> None:
    model = verifier.model
    probe = verifier.probe(_sig(synth_signatures, 1, 1))
    with FaissGallery.create(tmp_path / "g", dim=model.dim, fingerprint=model.fingerprint) as gallery:
        gallery.enroll("writer1", probe.embedding[None])
        assert verifier.verify_claim(_sig(synth_signatures, 1, 1), gallery, "writer1").decision == MATCH
        gallery.set_threshold("writer1", 1.01)
        strict = verifier.verify_claim(_sig(synth_signatures, 1, 1), gallery, "writer1")
        assert strict.decision == NO_MATCH and strict.threshold == 1.01
        assert "per-identity" in strict.threshold_source


def test_rejections_are_structured() -> None:
    from verify.decision import Probe, Rejection
    from verify.errors import NoFaceError, OutOfDistributionError

    probe = Probe(sha256="0", embedding=None, crop=None)
    assert probe.rejected is None
    probe.rejection = Rejection("no_face", "not a face: no face found")
    assert probe.rejected == "not a face: no face found"
    err = probe.rejection.error("a.png")
    assert isinstance(err, NoFaceError) and str(err) == "a.png: not a face: no face found"
    assert isinstance(Rejection("blank_page", "not a signature: the page is blank").error(), OutOfDistributionError)
    assert isinstance(Rejection("out_of_distribution", "x").error(), OutOfDistributionError)

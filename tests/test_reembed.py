"""Re-embedding a gallery with another model: one library path (`verify.enroll.reembed_gallery`), batched and
gated, used by `verify gallery reembed` and by the web app's service (a gallery of another model)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from verify.enroll import reembed_gallery
from verify.errors import OutOfDistributionError
from verify.gallery import FaissGallery
from verify.io import load_image
from verify.ood_gate import GateRefusal
from verify.verifier import Verifier

VERIFY_BIN = str(Path(sys.executable).parent / "verify")


def _sig(root: Path, writer: int, i: int) -> Path:
    return root / "full_org" / f"original_{writer}_{i}.png"


class _RefuseCrops:
    """A stand-in OOD gate that refuses exactly the given crops (and accepts everything else)."""

    def __init__(self, refused: list[np.ndarray]) -> None:
        self.refused = refused

    def check(self, features: np.ndarray, crops: Any, what: str) -> tuple[np.ndarray, list[GateRefusal | None]]:
        scores = np.array([0.0 if any(np.array_equal(c, r) for r in self.refused) else 1.0 for c in crops])
        return scores, [GateRefusal(f"{what} (OOD score {s:.3f} < 0.500)") if s < 0.5 else None for s in scores]


def _gate(verifier: Verifier, refused: list[Path]) -> Verifier:
    crops = [verifier.model.preprocess(load_image(p, mode="gray")).image for p in refused]
    verifier.ood, verifier.ood_threshold = _RefuseCrops(crops), 0.5
    return verifier


def _old_gallery(folder: Path, synth: Path, writers: tuple[int, ...] = (1, 2, 3)) -> Path:
    """A gallery made by another model ("old-model"): writer N enrolled with signature 1 of writer N."""
    rng = np.random.default_rng(0)
    with FaissGallery.create(folder, dim=16, fingerprint="old-model") as g:
        for w in writers:
            g.enroll(f"writer {w}", rng.standard_normal(16), images=[_sig(synth, w, 1).read_bytes()], sources=["x"])
    return folder


def test_reembed_is_batched_and_equals_the_pipeline(tmp_path: Path, tiny_model: Path, synth_signatures: Path):
    folder = _old_gallery(tmp_path / "g", synth_signatures)
    verifier = Verifier.from_path(tiny_model)
    calls: list[int] = []
    embed_crops = verifier.model.embed_crops

    def counting(crops: Any, batch_size: int = 32) -> np.ndarray:
        calls.append(len(crops))
        return embed_crops(crops, batch_size=batch_size)

    verifier.model.embed_crops = counting  # type: ignore[method-assign]
    with FaissGallery.open(folder) as g:
        assert reembed_gallery(verifier, g) == 3
        assert calls == [3]  # one embedding pass for the three stored images
        assert g.fingerprint == verifier.model.fingerprint
        expected = Verifier.from_path(tiny_model).probe(str(_sig(synth_signatures, 2, 1))).embedding
        np.testing.assert_allclose(g.embeddings("writer 2")[0], expected, atol=1e-5)


def test_reembed_reports_every_gated_sample_and_changes_nothing(
    tmp_path: Path, tiny_model: Path, synth_signatures: Path
):
    folder = _old_gallery(tmp_path / "g", synth_signatures)
    verifier = _gate(Verifier.from_path(tiny_model), [_sig(synth_signatures, 1, 1), _sig(synth_signatures, 3, 1)])
    with FaissGallery.open(folder) as g, pytest.raises(OutOfDistributionError) as refused:
        reembed_gallery(verifier, g)
    message = str(refused.value)
    assert "sample 1 of 'writer 1'" in message and "sample 3 of 'writer 3'" in message
    assert "writer 2" not in message and "OOD score" in message and "nothing was re-embedded" in message
    with FaissGallery.open(folder) as g:
        assert g.fingerprint == "old-model" and g.stats()["samples"] == 3


def test_reembed_refused_for_every_sample_blames_the_model_not_the_samples(
    tmp_path: Path, tiny_model: Path, synth_signatures: Path
):
    folder = _old_gallery(tmp_path / "g", synth_signatures)
    every = [_sig(synth_signatures, w, 1) for w in (1, 2, 3)]
    with FaissGallery.open(folder) as g, pytest.raises(OutOfDistributionError) as refused:
        reembed_gallery(_gate(Verifier.from_path(tiny_model), every), g)
    message = str(refused.value)
    assert "the model refused every sample, so it does not fit this gallery" in message
    assert "verify gallery remove" not in message  # removing every sample one by one is not the way out
    with FaissGallery.open(folder) as g:
        assert g.fingerprint == "old-model" and g.stats()["samples"] == 3


def test_cli_reembed_gates_and_reembeds(tmp_path: Path, tiny_model: Path, synth_signatures: Path):
    import cv2

    from verify.cli import main

    folder = _old_gallery(tmp_path / "g", synth_signatures, writers=(1,))
    with FaissGallery.open(folder) as g:
        for k, width in enumerate((96, 120), start=1):
            blank = cv2.imencode(".png", np.full((64, width), 255, np.uint8))[1].tobytes()
            g.enroll(f"blank {k}", np.ones(16), images=[blank], sources=[f"b{k}"])
    args = [VERIFY_BIN, "gallery", "reembed", "--gallery", str(folder), "--model", str(tiny_model)]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "sample 2 of 'blank 1'" in proc.stderr and "sample 3 of 'blank 2'" in proc.stderr
    with FaissGallery.open(folder) as g:
        assert g.fingerprint == "old-model"
        g.remove_identity("blank 1")
        g.remove_identity("blank 2")
    assert main(args[1:]) == 0  # the same command in this process (a subprocess pays the imports again)
    with FaissGallery.open(folder) as g:
        assert g.fingerprint == Verifier.from_path(tiny_model).model.fingerprint


def test_app_reembeds_through_the_same_gate(tmp_path: Path, tiny_model_factory, synth_signatures: Path):
    from app.service import VerifyService

    model = tiny_model_factory(tmp_path / "model", seed=3)  # its own shared Verifier: the stand-in gate stays here
    _old_gallery(tmp_path / "root" / "signature", synth_signatures)
    svc = VerifyService(tmp_path / "root", signature_model=model, work_dir=tmp_path / "w", reembed_on_mismatch=True)
    try:
        _gate(svc.verifier("signature"), [_sig(synth_signatures, 2, 1)])
        with pytest.raises(OutOfDistributionError, match="sample 2 of 'writer 2'") as refused:
            svc.gallery_list("signature")
        message = str(refused.value)  # for the page: what happened and who can act, no command to run
        assert "enrolled with another model" in message and "verify gallery" not in message
        with FaissGallery.open(tmp_path / "root" / "signature") as g:
            assert g.fingerprint == "old-model" and g.stats()["samples"] == 3
    finally:
        svc.close()

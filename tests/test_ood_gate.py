"""Outlier-exposure OOD gate: material splits, ink statistics, fit/save/load, old cards, the Verifier's message."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from training.ood_exposure import binarised, fit_exposure_gate
from training.ood_material import KINDS, ood_material
from verify.errors import ConfigError, ModelError
from verify.ood import GaussianOODScorer
from verify.ood_gate import KIND_WORDS, NAME_KIND_SHARE, GateRefusal, GaussianGate, OutlierExposureGate, load_gate
from verify.ood_ink import ALL_FEATURES, INK_FEATURES, SHAPE_FEATURES, ink_statistics

KIND_TEST = ("printed_text", "ruled", "shapes", "logos", "digits")


def test_material_kinds_splits_are_disjoint_and_seeded():
    fit = ood_material(60, 90, n=4, seed=0, split="fit", kinds=KIND_TEST)
    again = ood_material(60, 90, n=4, seed=0, split="fit", kinds=KIND_TEST)
    held = ood_material(60, 90, n=4, seed=0, split="eval", kinds=KIND_TEST)
    assert set(fit) == set(KIND_TEST) and {"ruled", "shapes", "logos", "printed_text"} <= set(KINDS)
    for kind in KIND_TEST:
        assert all(im.dtype == np.uint8 and im.ndim == 3 and im.shape[2] == 3 for im in fit[kind])
        assert all(np.array_equal(a, b) for a, b in zip(fit[kind], again[kind], strict=True))
        fit_hashes = {im.tobytes() for im in fit[kind]}
        assert not fit_hashes & {im.tobytes() for im in held[kind]}
        assert all(im.min() < 150 for im in fit[kind])  # there is ink


def test_ink_statistics_tell_a_box_from_a_scribble():
    box = np.zeros((64, 96), np.uint8)
    cv2.rectangle(box, (5, 5), (90, 58), 255, 2)
    scribble = np.zeros((64, 96), np.uint8)
    t = np.linspace(0, 4 * np.pi, 200)
    pts = np.stack([48 + 40 * np.sin(t * 0.5) * np.cos(t), 32 + 20 * np.sin(t)], 1).astype(np.int32)
    cv2.polylines(scribble, [pts], False, 255, 2)
    s_box, s_scr = ink_statistics(box), ink_statistics(scribble)
    line = INK_FEATURES.index("line_fraction")
    assert s_box[line] > 0.8 > s_scr[line]
    assert ink_statistics(np.zeros((64, 96), np.uint8))[INK_FEATURES.index("empty")] == 1.0
    assert np.array_equal(ink_statistics(scribble), ink_statistics(np.stack([scribble] * 3, -1)))


def _naive_shape_statistics(mask: np.ndarray) -> dict[str, float]:
    """A slow reference for the shape statistics of a one-piece mask: distances to the hull outline pixel by
    pixel, holes by flood-filling the background from the border."""
    pts = np.argwhere(mask > 0)[:, ::-1].astype(np.int32)
    hull = cv2.convexHull(pts)
    width = 2 * float(cv2.distanceTransform(mask, cv2.DIST_L2, 3)[mask > 0].mean())
    reach = round(width + 2) / 2 + 0.5  # a line drawn `thickness` wide covers pixel centres this close
    near = [abs(cv2.pointPolygonTest(hull, (float(x), float(y)), True)) <= reach for x, y in pts]
    background = (mask == 0).astype(np.uint8)
    outside = background.copy()
    cv2.floodFill(outside, None, (0, 0), 2)
    _, _, w, h = cv2.boundingRect(mask)
    return {
        "hull_outline_fraction": float(np.mean(near)),
        "hull_fill": float(mask.sum() / cv2.contourArea(hull)),
        "hole_area": float((outside == 1).sum() / (w * h)),
    }


@pytest.mark.parametrize("shape", ["frame", "disc", "scribble"])
def test_shape_statistics_match_a_naive_reference(shape: str):
    mask = np.zeros((64, 96), np.uint8)
    if shape == "frame":
        cv2.rectangle(mask, (10, 8), (85, 55), 1, 2)
    elif shape == "disc":
        cv2.circle(mask, (48, 32), 20, 1, -1)
    else:
        t = np.linspace(0, 4 * np.pi, 200)
        pts = np.stack([48 + 40 * np.sin(t * 0.5) * np.cos(t), 32 + 20 * np.sin(t)], 1).astype(np.int32)
        cv2.polylines(mask, [pts], False, 1, 2)
    got = dict(zip(ALL_FEATURES, ink_statistics(mask * 255), strict=True))
    ref = _naive_shape_statistics(mask)
    assert got["hull_outline_fraction"] == pytest.approx(ref["hull_outline_fraction"], abs=0.05)
    assert got["hull_fill"] == pytest.approx(ref["hull_fill"], rel=0.05)
    # holes measured inside their contours (through the bordering ink pixels), so a little larger
    assert ref["hole_area"] <= got["hole_area"] + 1e-9 and got["hole_area"] == pytest.approx(ref["hole_area"], rel=0.1)
    if shape == "frame":  # all ink on the hull outline, one large hole
        assert got["hull_outline_fraction"] > 0.95 and got["largest_hole"] > 0.8
    if shape == "disc":  # filled
        assert got["hull_fill"] > 0.95 and got["hole_area"] == 0
    if shape == "scribble":
        assert got["hull_outline_fraction"] < 0.7 and got["hull_fill"] < 0.4
    assert len(SHAPE_FEATURES) == len(ALL_FEATURES) - len(INK_FEATURES)


def _blobs(rng: np.random.Generator, n: int, centre: float, dim: int = 8) -> np.ndarray:
    return rng.standard_normal((n, dim)) + centre


def _fitted(
    rng: np.random.Generator, classifier: str, names: tuple[str, ...] = ALL_FEATURES, members: int = 1
) -> tuple[OutlierExposureGate, np.ndarray, np.ndarray]:
    writers = np.repeat(np.arange(8), 10)
    x_in = _blobs(rng, 80, 0.0) + writers[:, None] * 0.3
    x_out = np.vstack([_blobs(rng, 30, 6.0), _blobs(rng, 30, -6.0)])
    kinds = np.repeat(["printed_text", "ruled"], 30)
    ink_in, ink_out = rng.random((80, len(names))), rng.random((60, len(names))) + 0.5
    gate = fit_exposure_gate(
        x_in,
        writers,
        np.ones(80, bool),
        ink_in,
        x_out,
        kinds,
        ink_out,
        classifier=classifier,
        hidden=8,
        ink_features=names,
        members=members,
    )
    return gate, x_in, x_out


@pytest.mark.parametrize(
    ("classifier", "names"), [("mlp", ALL_FEATURES), ("logistic", ALL_FEATURES), ("mlp", INK_FEATURES)]
)
def test_gate_fits_round_trips_and_names_the_kind(tmp_path: Path, classifier: str, names: tuple[str, ...]):
    """Gates fitted before the shape statistics (INK_FEATURES only) still load and read just those."""
    rng = np.random.default_rng(0)
    gate, x_in, x_out = _fitted(rng, classifier, names)
    crops = [np.zeros((32, 48), np.uint8)] * len(x_in)
    gate.threshold = float(np.quantile(gate.score(x_in, crops), 0.05))
    probs = gate.probabilities(x_out, crops[: len(x_out)])
    np.testing.assert_allclose(probs.sum(1), 1.0)
    assert np.mean(probs[:, 0] < gate.threshold) > 0.9
    _scores, reasons = gate.check(x_out[:2], crops[:2], "not a signature")
    assert reasons[0] is not None and "looks like" in reasons[0].message and "%" in reasons[0].message
    assert reasons[0].looks_like in gate.kinds and KIND_WORDS[reasons[0].looks_like] in reasons[0].message
    gate.save(tmp_path / "ood.safetensors")
    section = {"threshold": gate.threshold}
    again = load_gate(tmp_path / "ood.safetensors", section)
    assert isinstance(again, OutlierExposureGate) and again.kinds == ["printed_text", "ruled"]
    assert again.ink_features == names
    assert np.array_equal(again.score(x_out, crops[: len(x_out)]), gate.score(x_out, crops[: len(x_out)]))
    assert b"pickle" not in (tmp_path / "ood.safetensors").read_bytes()[:4000]


def test_a_refusal_names_a_kind_only_when_it_holds_most_of_the_outlier_probability(monkeypatch) -> None:
    gate, _, x_out = _fitted(np.random.default_rng(0), "mlp")
    gate.threshold = 0.5
    rows = np.array([[0.1, 0.45, 0.45], [0.1, 0.85, 0.05], [0.1, 0.9 * NAME_KIND_SHARE - 0.01, 0.0], [0.6, 0.2, 0.2]])
    rows[2, 2] = 1.0 - rows[2, :2].sum()
    monkeypatch.setattr(gate, "probabilities", lambda features, crops: rows)
    _scores, reasons = gate.check(x_out[:4], [np.zeros((32, 48), np.uint8)] * 4, "not a signature")
    assert reasons[0] == GateRefusal("not a signature (signature likeness 10%; signatures are accepted from 50%)")
    assert reasons[1] is not None and reasons[1].looks_like == "printed_text"
    assert reasons[1].message.startswith("not a signature: it looks like printed text (signature likeness 10%")
    assert reasons[2] is not None and reasons[2].looks_like is None  # just below the share of 0.9
    assert reasons[3] is None


def test_gate_of_several_classifiers_averages_them_and_round_trips(tmp_path: Path):
    """members=3: three MLPs (seeds 0, 1, 2) on one design; p is the mean of the gates each would be alone."""
    gate, _, x_out = _fitted(np.random.default_rng(0), "mlp", members=3)
    assert len(gate.members) == 3 and not np.array_equal(gate.members[0][0][0], gate.members[1][0][0])
    crops = [np.zeros((32, 48), np.uint8)] * len(x_out)
    alone = []
    for m in range(3):
        single, _, _ = _fitted(np.random.default_rng(0), "mlp")
        single.members = [gate.members[m]]  # the same design, one classifier
        alone.append(single.probabilities(x_out, crops))
    np.testing.assert_allclose(gate.probabilities(x_out, crops), np.mean(alone, axis=0), atol=1e-12)
    first, _, _ = _fitted(np.random.default_rng(0), "mlp")
    np.testing.assert_allclose(first.probabilities(x_out, crops), alone[0])  # member 0 is the seed-0 classifier
    gate.threshold = 0.5
    gate.save(tmp_path / "ood.safetensors")
    again = load_gate(tmp_path / "ood.safetensors", {})
    assert isinstance(again, OutlierExposureGate) and len(again.members) == 3
    assert np.array_equal(again.probabilities(x_out, crops), gate.probabilities(x_out, crops))
    with pytest.raises(ConfigError, match="members"):
        _fitted(np.random.default_rng(0), "mlp", members=0)


def test_load_gate_keeps_old_gaussian_files_and_checks_the_hash(tmp_path: Path):
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((40, 4)), np.repeat(np.arange(4), 10)
    scorer = GaussianOODScorer().fit(x, y)
    scorer.save(tmp_path / "ood.safetensors")
    gate = load_gate(tmp_path / "ood.safetensors", {"threshold": -20.0})
    assert isinstance(gate, GaussianGate)
    scores, reasons = gate.check(np.r_[x[:1], x[:1] + 100], None, "not a signature")
    assert reasons[0] is None and reasons[1] is not None and reasons[1].looks_like is None
    assert reasons[1].message == f"not a signature (OOD score {scores[1]:.1f} < -20.0)"
    with pytest.raises(ModelError, match="sha256"):
        load_gate(tmp_path / "ood.safetensors", {"threshold": -20.0, "sha256": "0" * 64})


def test_binarised_is_black_and_white():
    image = np.full((40, 60), 230, np.uint8)
    cv2.line(image, (5, 20), (55, 25), 60, 2)
    assert set(np.unique(binarised(image))) <= {0, 255}


def test_verify_ood_fit_exposure_and_the_verifier(tmp_path: Path, tiny_model: Path):
    from training.ood_fit import fit_ood_gate
    from verify import load_model
    from verify.data import load_signature_dataset
    from verify.synth import generate_dataset
    from verify.verifier import Verifier

    model_dir = shutil.copytree(tiny_model, tmp_path / "model")
    data = generate_dataset(tmp_path / "data", 10, 2, 1, seed=3, progress=False)
    samples = load_signature_dataset(data, "cedar")
    train = [s for s in samples if int(str(s.identity).split("_")[-1]) % 3]
    held = [s for s in samples if not int(str(s.identity).split("_")[-1]) % 3]
    model = load_model(model_dir)
    section = fit_ood_gate(
        model, train, held, gate="exposure", material_n=12, features="embedding", classifier="logistic"
    )
    card = json.loads((model_dir / "model.json").read_text())
    assert card["ood"]["kind"] == "outlier_exposure" and len(card["ood"]["sha256"]) == 64
    assert (
        card["ood"]["classifier"] == "logistic"
        and len(load_gate(model_dir / "ood.safetensors", card["ood"]).layers) == 1
    )
    assert set(section["eval_material_rejected"]) >= set(KIND_TEST)
    verifier = Verifier(load_model(model_dir))
    probes = verifier.probes([str(s.path) for s in held])
    assert all(p.ood_score is not None and 0.0 <= p.ood_score <= 1.0 for p in probes)
    table = ood_material(150, 220, n=6, seed=5, split="eval", kinds=("ruled",))["ruled"]
    for p in verifier.probes(table):
        assert p.rejected is None or p.rejected.startswith("not a signature")


def test_gate_split_samples_identities_and_keeps_them_apart():
    from training.ood_fit import gate_split
    from verify.data import Sample

    samples = [
        Sample(path=Path(f"w{w}_{i}.png"), identity=f"w{w:02d}", kind="genuine") for w in range(20) for i in range(3)
    ]
    parts = gate_split(samples, max_identities=10, held_out=0.3, seed=1)
    train, held = {s.identity for s in parts["train"]}, {s.identity for s in parts["held_out"]}
    assert len(train | held) == 10 and not train & held and len(held) == 3
    assert parts == gate_split(samples, max_identities=10, held_out=0.3, seed=1)  # seeded
    everyone = gate_split(samples, held_out=0.3, seed=1)
    assert len({s.identity for part in everyone.values() for s in part}) == 20

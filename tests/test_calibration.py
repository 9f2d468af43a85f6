"""Operating points, Platt / isotonic calibrators and their JSON form."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression

from verify.errors import ConfigError
from verify.eval import metrics
from verify.eval.calibration import (
    OperatingPoint,
    ScoreCalibrator,
    calibration_section,
    choose_threshold,
    fingerprint_split,
    per_identity_thresholds,
)


@pytest.fixture
def cal_scores() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(0.7, 0.1, 400), rng.normal(0.3, 0.12, 3000)


@pytest.mark.parametrize("target", [0.1, 0.01, 1e-3])
def test_threshold_achieves_target_far(cal_scores, target):
    g, i = cal_scores
    op = choose_threshold(g, i, target)
    assert op.far <= target
    assert op.far == np.mean(i >= op.threshold) and op.frr == np.mean(g < op.threshold)
    # the lowest such threshold: the next impostor score down would break the target
    below = i[i < op.threshold].max()
    assert np.mean(i >= below) > target
    assert op.far > target - 2 / i.size
    assert op.target == f"far={target:g}" and op.note is None
    assert (op.n_genuine, op.n_impostor) == (400, 3000)


def test_threshold_eer_and_notes(cal_scores):
    g, i = cal_scores
    op = choose_threshold(g, i, "eer", split_fingerprint=fingerprint_split(["w2", "w1"]), source="test")
    rate, threshold = metrics.eer(g, i)
    assert op.threshold == threshold and op.target_far is None
    assert op.far == pytest.approx(rate, abs=0.01) and op.frr == pytest.approx(rate, abs=0.01)
    assert op.split_fingerprint == fingerprint_split(["w1", "w2"]) != fingerprint_split(["w1", "w3"])
    few = choose_threshold(g, i[:50], 1e-3)
    assert few.note and metrics.NOT_ENOUGH_IMPOSTORS in few.note
    assert choose_threshold(g, i).split_fingerprint != choose_threshold(g, i[:-1]).split_fingerprint
    with pytest.raises(ConfigError):
        choose_threshold(g, i, 1.5)
    json.dumps(op.to_dict())


@pytest.mark.parametrize("method", ["platt", "isotonic"])
def test_calibrator_monotone_bounded_and_json_exact(cal_scores, method):
    g, i = cal_scores
    cal = ScoreCalibrator(method).fit(g, i)
    grid = np.linspace(-1, 1, 2001)
    p = cal.predict_proba(grid)
    assert np.all(np.diff(p) >= 0)
    assert p.min() >= 0 and p.max() <= 1
    assert p[0] < 0.05 and p[-1] > 0.95
    back = ScoreCalibrator.from_dict(json.loads(json.dumps(cal.to_dict())))
    np.testing.assert_array_equal(back.predict_proba(grid), p)
    assert back.to_dict() == cal.to_dict()


def test_calibrators_match_sklearn(cal_scores):
    g, i = cal_scores
    x, y = np.r_[g, i], np.r_[np.ones(g.size), np.zeros(i.size)]
    iso = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(x, y)
    grid = np.linspace(-0.5, 1.5, 501)
    np.testing.assert_allclose(ScoreCalibrator("isotonic").fit(g, i).predict_proba(grid), iso.predict(grid))
    platt = ScoreCalibrator("platt").fit(g, i)
    # Platt is well calibrated on its own data: mean p(match) equals the genuine fraction
    assert platt.predict_proba(x).mean() == pytest.approx(g.size / x.size, abs=1e-3)
    assert platt.to_dict()["prior"] == pytest.approx(g.size / x.size)


def test_calibrator_errors():
    with pytest.raises(ConfigError):
        ScoreCalibrator("beta")
    with pytest.raises(ConfigError):
        ScoreCalibrator().predict_proba([0.5])
    with pytest.raises(ConfigError):
        ScoreCalibrator.from_dict({"method": "platt", "coef": 1.0})


def test_calibration_section(cal_scores):
    g, i = cal_scores
    op = choose_threshold(g, i, 0.01, source="synthetic signatures, calibration writers")
    section = calibration_section(op, ScoreCalibrator().fit(g, i))
    expected = {"threshold", "source", "target", "target_far", "far", "frr", "n_genuine", "n_impostor"}
    assert expected | {"split_fingerprint", "calibrator"} <= set(section)
    assert section["threshold"] == op.threshold and section["calibrator"]["method"] == "platt"
    assert json.loads(json.dumps(section)) == section
    assert "calibrator" not in calibration_section(op)
    assert isinstance(op, OperatingPoint)


def test_per_identity_thresholds():
    rng = np.random.default_rng(0)
    data = {
        "low": (rng.normal(0.5, 0.05, 10), rng.normal(0.1, 0.05, 200)),
        "high": (rng.normal(0.9, 0.02, 10), rng.normal(0.7, 0.05, 200)),
        "few_genuine": (rng.normal(0.9, 0.02, 3), rng.normal(0.7, 0.05, 200)),
        "few_impostors": (rng.normal(0.9, 0.02, 10), rng.normal(0.7, 0.05, 20)),
    }
    out = per_identity_thresholds(data, min_samples=5, target_far=0.01)
    assert set(out) == {"low", "high"}
    assert out["low"] < 0.4 < 0.7 < out["high"]
    assert set(per_identity_thresholds(data, min_samples=5, target_far="eer")) == {"low", "high", "few_impostors"}


def test_loading_a_model_and_scoring_needs_no_scikit_learn(tmp_path) -> None:
    """scikit-learn (~1.8 s to import) is for fitting: a Verifier on a calibrated model with an OOD gate loads
    and scores without importing it (CLI start-up, each Ray actor)."""
    import subprocess
    import sys
    from pathlib import Path

    model = Path(__file__).resolve().parents[1] / "assets" / "models" / "signature-teacher-hog"
    code = (
        "import sys, numpy as np, verify\n"
        "from verify.verifier import Verifier\n"
        f"v = Verifier(verify.load_model({str(model)!r}))\n"
        "page = np.full((90, 200), 240, np.uint8); page[40:44, 20:180] = 30; page[20:70, 60:64] = 30\n"
        "v.match(page, page)\n"
        "print(sorted({m.split('.')[0] for m in sys.modules if m.startswith('sklearn')}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"

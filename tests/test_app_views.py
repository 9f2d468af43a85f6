"""The words the web app shows (no browser, no model): decisions a bank clerk understands, scores with their
meaning, the signature model's measured reliability, no server paths, enrolment messages, the batch review."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from app import views
from app.batch_view import batch_review_html, row_review
from app.resources import reliability
from app.wording import clean_reason, plural, scrub_paths

RELIABILITY = {"frr": 0.30, "far_skilled": 0.34, "far_random": 0.06, "writers": 40, "synthetic": True}


def _answer(**kw) -> dict:
    out = {"decision": "match", "score": 0.95, "probability": 0.91, "threshold": 0.9, "modality": "face"}
    out.update(threshold_source="calibrated on LFW. More text", notes=[], model="m")
    return {**out, **kw}


def test_face_answer_leads_with_the_decision_then_the_score_and_its_meaning() -> None:
    text = views.verify_markdown(_answer(notes=["2 faces found, used the largest"]))
    head, *rest = text.split("\n\n")
    assert head == "## Match: same person"
    assert "Similarity 0.950" in rest[0] and "1 = identical" in rest[0] and "match from **0.900** up" in rest[0]
    assert "calibrated on LFW" in rest[0] and "More text" not in text
    assert "chance that they match: **91%**" in text and "p(match)" not in text
    assert "2 faces found, used the largest" in text
    assert "How far to trust" not in text  # faces: no signature reliability block
    assert views.verify_markdown(_answer(decision="no match", score=0.5)).startswith("## No match: different people")


def test_signature_answers_speak_of_hands_and_say_how_far_to_trust_them() -> None:
    no = views.verify_markdown(_answer(decision="no match", modality="signature", score=0.8), RELIABILITY)
    assert no.startswith("## No match: not the reference's hand (a forgery, or another writer)")
    assert "different people" not in no
    assert "40 test writers (synthetic signatures" in no and "**30%** of genuine" in no
    assert "**34%** of skilled forgeries" in no and "not reliable enough to decide alone" in no
    yes = views.verify_markdown(_answer(modality="signature"), None)
    assert yes.startswith("## Match: the signatures are by the same hand") and "no measured error rates" in yes
    ident = views.identify_markdown(
        _answer(modality="signature", identity="writer-02", candidates=[{"identity": "writer-02", "score": 0.95}]),
        RELIABILITY,
    )
    assert ident.startswith("## Signed by: writer-02") and "How far to trust this" in ident


def test_reliability_is_read_from_the_models_report(tmp_path: Path) -> None:
    """New models bring their own figures: nothing about them is written into the app."""
    model = tmp_path / "m"
    (model / "report").mkdir(parents=True)
    report = {
        "threshold": {"value": 0.8},
        "data": {"test_identities": 12},
        "signature": {"errors_at_threshold": {"FRR": 0.05, "FAR_skilled": 0.07, "FAR_random": 0.01}},
    }
    (model / "report" / "report.json").write_text(json.dumps(report))
    card = {"provenance": {"data": "synthetic signatures"}, "metrics": {"report": "report/report.md"}}
    rel = reliability(model, card, 0.8)
    assert rel is not None and rel["frr"] == 0.05 and rel["writers"] == 12 and rel["synthetic"] and rel["applies"]
    text = views.reliability_markdown(rel)
    assert "12 test writers" in text and "**5%** of genuine" in text and "not reliable" not in text
    assert reliability(model, card, 0.9)["applies"] is False  # another threshold: the figures do not apply
    assert reliability(tmp_path / "none", {}, 0.8) is None


def test_no_server_path_in_any_message() -> None:
    assert scrub_paths("/tmp/verify-app-x1/batch-ab/pairs.csv: columns ['a;b']") == "pairs.csv: columns ['a;b']"
    root = "/tmp/verify-app-x1/batch-ab/images"
    assert scrub_paths(f"questioned: {root}/faces/missing.png: no such file", [root]) == (
        "questioned: faces/missing.png: no such file"
    )
    assert scrub_paths("see http://127.0.0.1:7860/a/b") == "see http://127.0.0.1:7860/a/b"
    assert "/tmp" not in views.error_markdown("'x' is not enrolled in /srv/galleries/demo/face")
    shown = views.batch_table(pd.DataFrame({"score": [""], "error": ["reference: /tmp/j/images/a.png: no such file"]}))
    assert shown["error"][0] == "reference: a.png: no such file"


def test_numbers_have_a_meaning() -> None:
    reason = clean_reason("image A: not a signature (OOD score -17509.9 < -355.4)")
    assert reason == (
        "image A: it does not look like a signature to the model (typicality score -17510; "
        "the signatures it was built on score above -355)"
    )
    rejected = views.verify_markdown(
        _answer(decision="rejected", score=None, reason="not a face (OOD score -9.0 < -1.0)")
    )
    assert rejected.startswith("## Could not compare: it does not look like a face")
    quality = views.quality_words({"face_size": 90.0, "blur": 81.2, "roll_deg": -11.6, "yaw_ratio": 0.05})
    assert quality == "face 90 px, sharpness 81, tilt 12°, turn 0.05"
    assert "at least 60 px wide" in views.QUALITY_LIMITS
    shown = views.batch_table(pd.DataFrame({"score": ["0.123456789", ""], "threshold": ["0.9187063369877028"] * 2}))
    assert shown["score"].tolist() == ["0.123", ""] and shown["threshold"][0] == "0.919"
    assert plural(1, "identity", "identities") == "1 identity" and plural(2, "sample") == "2 samples"
    stats = {
        "model": {"installed": True, "name": "m", "modality": "face", "dim": 8, "fingerprint": "f", "threshold": 0.9,
                  "threshold_source": "x", "p_match": False, "ood_gate": False},
        "gallery": {"identities": 1, "samples": 2},
    }  # fmt: skip
    assert views.stats_markdown(stats).startswith("### 1 identity, 2 samples")


def test_enrolment_messages() -> None:
    refused = [{"source": "notes.txt", "status": "refused", "reason": "notes.txt: not an image"}]
    text_file = {"name": "Only Fake", "modality": "face", "enrolled": 0, "warnings": [], "samples": refused}
    text = views.enroll_markdown(text_file)
    assert text.startswith("## Nothing enrolled for **Only Fake**") and "0 of 1" not in text
    assert "frontal" not in text  # the quality tip only for quality refusals
    skipped = [{"source": "a.jpg", "status": "skipped", "reason": "already enrolled (same image)"}]
    dup = {"name": "A", "modality": "face", "enrolled": 0, "warnings": [], "samples": skipped}
    assert views.enroll_markdown(dup).startswith("## Nothing new: this image is already enrolled")
    blurred = {**text_file, "samples": [{"source": "b.jpg", "status": "refused", "reason": "too blurred (12 < 40)"}]}
    assert "frontal" in views.enroll_markdown(blurred)


def test_signature_overlay_has_two_colours() -> None:
    a = np.full((20, 30), 255, np.uint8)
    b = a.copy()
    a[5, :] = 0  # A's stroke
    b[15, :] = 0  # B's stroke
    a[10, :] = b[10, :] = 0  # shared
    both = views.overlay(a, b)
    assert both.shape == (20, 30, 3)
    assert tuple(both[5, 0]) == (0, 0, 255) and tuple(both[15, 0]) == (255, 0, 0)  # A blue, B red
    assert tuple(both[10, 0]) == (0, 0, 0) and tuple(both[0, 0]) == (255, 255, 255)
    assert views.overlay(a, None) is None


def test_batch_review_puts_flagged_rows_first_with_both_thumbnails(tmp_path: Path) -> None:
    import cv2

    image = tmp_path / "a.png"
    cv2.imwrite(str(image), np.full((40, 40, 3), 128, np.uint8))
    rows = pd.DataFrame(
        {
            "reference": ["a.png", "a.png", "a.png"],
            "questioned": ["a.png", "a.png", "missing.png"],
            "label": ["1", "0", "1"],
            "row": ["1", "2", "3"],
            "score": ["0.99", "0.95", ""],
            "decision": ["match", "match", ""],
            "threshold": ["0.9", "0.9", ""],
            "error": ["", "", "questioned: missing.png: no such file"],
        }
    )
    assert row_review(rows.iloc[0]) == ("match", "similarity 0.990 at or above 0.900", False)
    assert row_review(rows.iloc[1])[2] and "the CSV says different" in row_review(rows.iloc[1])[1]
    page = batch_review_html(rows, [(str(image), str(image))] * 2 + [(str(image), None)], ["reference", "questioned"])
    order = [page.index(f"<td>{r}</td>") for r in ("1", "2", "3")]
    assert order[1] < order[0] and order[2] < order[0]  # flagged rows (2: disagrees with the label; 3: error) first
    assert page.count("data:image/jpeg;base64,") == 5 and "missing.png" in page and str(tmp_path) not in page
    summary = views.batch_markdown(
        {"summary": {"rows": 3, "ok": 2, "failed": 1, "modality": "face", "seconds": 1.0}, "rows": rows}
    )
    assert summary.startswith("## 3 pairs checked: 2 answered, 1 not checked") and "2 rows to review" in summary
    assert "**0 of 1** same pairs were missed" in summary and "**1 of 1** different pairs were accepted" in summary
    assert "How far to trust" not in summary
    signatures = {"summary": {"rows": 3, "ok": 2, "failed": 1, "modality": "signature", "seconds": 1.0}, "rows": rows}
    assert "**34%** of skilled forgeries" in views.batch_markdown({**signatures, "reliability": RELIABILITY})

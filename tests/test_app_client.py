"""The app's named API endpoints through `gradio_client`, behind basic auth, with the bundled face model."""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import serve_app

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

FACES = Path(__file__).resolve().parent / "data" / "faces"
AUTH = ("tester", "s3cret")
ENDPOINTS = ["verify", "enroll", "identify", "batch", "gallery_list", "remove_identity", "remove_sample", "stats"]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from serve_app(tmp_path_factory.mktemp("app_client"), auth=AUTH)


@pytest.fixture(scope="module")
def client(app_url: str):
    from gradio_client import Client

    return Client(app_url, auth=AUTH, verbose=False, analytics_enabled=False, download_files=False)


def face(name: str):
    from gradio_client import handle_file

    return handle_file(str(FACES / name))


def test_named_endpoints_are_listed(client) -> None:
    names = {name.lstrip("/") for name in client.view_api(print_info=False, return_format="dict")["named_endpoints"]}
    assert set(ENDPOINTS) <= names


def test_api_names_its_outputs_and_marks_optional_inputs(client) -> None:
    api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    returns = {name.lstrip("/"): [r["label"] for r in e["returns"]] for name, e in api.items()}
    assert returns["verify"] == ["answer", "details", "A as compared", "B as compared", returns["verify"][4]]
    assert returns["identify"][0] == "answer" and returns["batch"][0] == "summary"
    for name in ENDPOINTS:
        assert not [label for label in returns[name] if label.startswith("value_")], (name, returns[name])
    optional = {
        name.lstrip("/"): {p["parameter_name"] for p in e["parameters"] if p["parameter_has_default"]}
        for name, e in api.items()
    }
    assert all("compare_anyway" in optional[name] for name in ("verify", "identify", "batch"))
    assert {"modality", "compare_anyway"} <= optional["verify"] and {"zipped", "folder", "modality"} <= optional[
        "batch"
    ]
    assert {"files", "photo", "modality", "enroll_anyway"} <= optional["enroll"] and "sure" in optional["remove_sample"]
    required = {p["parameter_name"] for p in api["/verify"]["parameters"] if not p["parameter_has_default"]}
    assert required == {"image_a", "image_b"}


def test_auth_is_required(app_url: str) -> None:
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(app_url.rstrip("/") + "/config", timeout=30)
    assert info.value.code == 401


def test_enroll_verify_identify_and_remove(client) -> None:
    from gradio_client.exceptions import AppError

    text, table, samples = client.predict(
        "Barack Obama", "face", [face("obama.jpg"), face("obama2.jpg")], None, api_name="/enroll"
    )
    assert "2 of 2 images enrolled" in text and len(samples) == 2
    assert [row[1] for row in table["data"]] == ["enrolled", "enrolled"]

    _, same, crop_a, crop_b, overlay = client.predict(face("obama.jpg"), face("obama3.jpg"), api_name="/verify")
    assert same["decision"] == "match" and same["modality"] == "face" and crop_a and crop_b and overlay is None
    _, other, _, _, _ = client.predict(face("obama.jpg"), face("biden.jpg"), "face", api_name="/verify")
    assert other["decision"] == "no match" and other["score"] < other["threshold"]

    text, _, _, found = client.predict(face("biden.jpg"), "face", 3, api_name="/identify")
    assert found["decision"] == "unknown" and text.startswith("## Unknown")
    _, _, _, found = client.predict(face("obama3.jpg"), "face", 3, api_name="/identify")
    assert found["identity"] == "Barack Obama"

    table, _, _ = client.predict("face", api_name="/gallery_list")
    assert table["data"][0][:2] == ["Barack Obama", 2]
    text, stats = client.predict("face", api_name="/stats")
    assert stats["gallery"]["samples"] == 2 and stats["model"]["name"].startswith("face-resnet")
    assert "/tmp" not in str(stats) and "path" not in stats["model"]  # no server path (gradio_client would fetch it)

    with pytest.raises(AppError, match="type its name"):
        client.predict("face", "Barack Obama", "barack", api_name="/remove_identity")
    text, _ = client.predict("face", "Barack Obama", "Barack Obama", api_name="/remove_identity")
    assert "Removed **Barack Obama** and 2 sample(s)" in text


def test_bad_input_is_an_error_message_not_a_traceback(client, tmp_path: Path) -> None:
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    notes = tmp_path / "notes.jpg"
    notes.write_text("not a picture")
    with pytest.raises(AppError, match=r"notes\.jpg: not an image"):
        client.predict(handle_file(str(notes)), face("obama.jpg"), "face", api_name="/verify")

"""The web UI in headless Chromium (Debian's /usr/bin/chromium, never a downloaded build): enroll, verify,
identify, a refused non-image, a batch with its CSV download, the gallery. Screenshots of every tab go to the
pytest tmp dir and /tmp/ui_screens/."""

from __future__ import annotations

import csv
import io
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import serve_app

CHROMIUM = Path("/usr/bin/chromium")
FACES = Path(__file__).resolve().parent / "data" / "faces"
SCREENS = Path("/tmp/ui_screens")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 90_000

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is missing (`make chromium` installs it)"),
]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from serve_app(tmp_path_factory.mktemp("app_browser"))


@pytest.fixture(scope="module")
def page(app_url: str) -> Iterator[object]:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
        pg = context.new_page()
        pg.requested = []  # every URL the page asked for
        pg.on("request", lambda request: pg.requested.append(request.url))
        pg.set_default_timeout(TIMEOUT_MS)
        pg.goto(app_url)
        pg.wait_for_selector("#verify-btn")
        yield pg
        browser.close()


@pytest.fixture(scope="module")
def screens(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ui_screens")


def shot(page, screens: Path, name: str) -> None:
    path = screens / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    SCREENS.mkdir(exist_ok=True)
    shutil.copy(path, SCREENS / path.name)


def tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def upload(page, elem_id: str, *files: Path) -> None:
    """Upload into a component and wait until it shows the upload (file names, or the image)."""
    from playwright.sync_api import expect

    page.locator(f"#{elem_id} input[type=file]").set_input_files([str(f) for f in files])
    if elem_id.startswith(("verify-", "identify-")):
        page.locator(f"#{elem_id} img").first.wait_for(state="attached")
    else:
        expect(page.locator(f"#{elem_id}")).to_contain_text(files[-1].stem)


def test_enroll_then_verify_identify_and_errors(page, app_url: str, screens: Path, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    tab(page, "Enroll")
    page.locator("#enroll-name textarea, #enroll-name input").first.fill("Barack Obama")
    upload(page, "enroll-files", FACES / "obama.jpg", FACES / "obama2.jpg")
    page.locator("#enroll-btn").click()
    expect(page.locator("#enroll-result")).to_contain_text("2 of 2 image(s) enrolled")
    shot(page, screens, "2-enroll")

    tab(page, "Gallery")
    expect(page.locator("#gallery-stats")).to_contain_text("1 identities, 2 samples")
    expect(page.locator("#gallery-identities")).to_contain_text("Barack Obama")
    page.wait_for_timeout(2000)  # let the thumbnails load before the screenshot
    shot(page, screens, "5-gallery")

    tab(page, "Verify")
    upload(page, "verify-a", FACES / "obama.jpg")
    upload(page, "verify-b", FACES / "obama3.jpg")
    page.locator("#verify-btn").click()
    expect(page.locator("#verify-result")).to_contain_text("Match: same person")
    shot(page, screens, "1-verify-match")

    page.goto(app_url)  # a fresh page: empty inputs
    upload(page, "verify-a", FACES / "obama.jpg")
    upload(page, "verify-b", FACES / "biden.jpg")
    page.locator("#verify-btn").click()
    expect(page.locator("#verify-result")).to_contain_text("No match")
    shot(page, screens, "1-verify-no-match")

    tab(page, "Identify")
    upload(page, "identify-image", FACES / "biden.jpg")
    page.locator("#identify-btn").click()
    expect(page.locator("#identify-result")).to_contain_text("Unknown")
    expect(page.locator("#identify-result")).to_contain_text("Closest: Barack Obama")
    expect(page.locator("#identify-result")).to_contain_text("below the threshold")
    shot(page, screens, "3-identify-unknown")

    page.goto(app_url)
    notes = tmp_path / "notes.png"
    notes.write_text("this is text, not a picture")
    upload(page, "verify-a", notes)
    upload(page, "verify-b", FACES / "obama.jpg")
    page.locator("#verify-btn").click()
    expect(page.get_by_text("notes.png: not an image").first).to_be_visible()
    page.wait_for_timeout(500)
    expect(page.get_by_text("Traceback")).to_have_count(0)
    shot(page, screens, "1-verify-error")


def test_batch_runs_and_downloads_csv(page, app_url: str, screens: Path, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    archive = tmp_path / "faces.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name in ("obama.jpg", "obama3.jpg", "biden.jpg"):
            zf.write(FACES / name, f"faces/{name}")
    pairs = tmp_path / "pairs.csv"
    pairs.write_text(
        "reference,questioned,label\nfaces/obama.jpg,faces/obama3.jpg,1\nfaces/obama.jpg,faces/biden.jpg,0\n"
    )
    page.goto(app_url)
    tab(page, "Batch")
    upload(page, "batch-csv", pairs)
    upload(page, "batch-zip", archive)
    page.locator("#batch-btn").click()
    expect(page.locator("#batch-result")).to_contain_text("2 rows: 2 scored")
    shot(page, screens, "4-batch")
    with page.expect_download() as info:
        page.locator("#batch-download-csv").click()
    rows = list(csv.DictReader(io.StringIO(Path(info.value.path()).read_text())))
    assert [r["decision"] for r in rows] == ["match", "no match"]


def test_page_loads_nothing_from_outside(page, app_url: str) -> None:
    origin = app_url.rstrip("/")
    outside = [u for u in page.requested if not u.startswith((origin, "data:", "blob:"))]
    assert page.requested and outside == []

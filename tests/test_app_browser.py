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

from verify.models.defaults import assets_dir

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


def result(page, elem_id: str):
    return page.locator(f"#{elem_id}")


def no_error_badge(page) -> None:
    """No Gradio "Error" badge anywhere on the page (they cover the controls under them)."""
    from playwright.sync_api import expect

    expect(page.locator(".error", has_text="Error")).to_have_count(0)


def test_enroll_then_verify_identify_and_errors(page, app_url: str, screens: Path, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    tab(page, "Enroll")
    page.locator("#enroll-name textarea, #enroll-name input").first.fill("Barack Obama")
    upload(page, "enroll-files", FACES / "obama.jpg", FACES / "obama2.jpg")
    page.locator("#enroll-btn").click()
    expect(result(page, "enroll-result")).to_contain_text("2 of 2 images enrolled")
    expect(page.locator("#enroll-table")).to_contain_text("obama2.jpg")
    shot(page, screens, "2-enroll")
    # No name: said so, and the per-image table is emptied with its own headers (not Gradio's "1 2 3").
    page.locator("#enroll-name textarea, #enroll-name input").first.fill("")
    page.locator("#enroll-btn").click()
    expect(result(page, "enroll-result")).to_contain_text("type the person's name")
    expect(page.locator("#enroll-table")).not_to_contain_text("obama2.jpg")
    expect(page.locator("#enroll-table")).to_contain_text("why / quality")

    tab(page, "Gallery")
    expect(page.locator("#gallery-stats")).to_contain_text("1 identity, 2 samples")
    expect(page.locator("#gallery-identities")).to_contain_text("Barack Obama")
    page.wait_for_timeout(1000)  # let the thumbnails load before the screenshot
    shot(page, screens, "5-gallery")

    tab(page, "Verify")
    upload(page, "verify-a", FACES / "obama.jpg")
    upload(page, "verify-b", FACES / "obama3.jpg")
    page.locator("#verify-btn").click()
    expect(result(page, "verify-result")).to_contain_text("Match: same person")
    expect(result(page, "verify-result")).to_contain_text("counts as a match from")
    shot(page, screens, "1-verify-match")

    # A corrupt upload: named at once, taken off the page (no broken-image icon), the old answer gone.
    notes = tmp_path / "notes.png"
    notes.write_text("this is text, not a picture")
    page.locator("#verify-a input[type=file]").set_input_files(str(notes))
    expect(result(page, "verify-result")).to_contain_text("notes.png: not an image")
    expect(result(page, "verify-result")).not_to_contain_text("Match")
    expect(page.locator("#verify-a img")).to_have_count(0)
    # Verify anyway: an answer that says why, the previous crops cleared, no badge, no traceback.
    page.locator("#verify-btn").click()
    expect(result(page, "verify-result")).to_contain_text("Not checked")
    expect(result(page, "verify-result")).to_contain_text("image A: no image given")
    expect(page.locator("#verify-crop-a img")).to_have_count(0)
    no_error_badge(page)
    expect(page.get_by_text("Traceback")).to_have_count(0)
    shot(page, screens, "1-verify-error")
    # The controls still work: a good pair answers again.
    upload(page, "verify-a", FACES / "obama.jpg")
    upload(page, "verify-b", FACES / "biden.jpg")
    page.locator("#verify-btn").click()
    expect(result(page, "verify-result")).to_contain_text("No match: different people")
    # A signature against a photo: refused, with the way out named; ticked, compared and flagged.
    upload(page, "verify-a", assets_dir() / "demo" / "signatures" / "writer-01" / "genuine_1.png")
    upload(page, "verify-b", FACES / "obama.jpg")
    page.locator("#verify-btn").click()
    expect(result(page, "verify-result")).to_contain_text("Could not compare: input 2: not a signature")
    expect(result(page, "verify-result")).to_contain_text("tick Compare even if an image does not look like")
    page.locator("#verify-anyway input").check()
    page.locator("#verify-btn").click()
    expect(result(page, "verify-result")).to_contain_text("flagged: input 2: not a signature")
    expect(result(page, "verify-result")).to_contain_text("compared anyway, as asked")
    page.locator("#verify-anyway input").uncheck()

    tab(page, "Identify")
    upload(page, "identify-image", FACES / "biden.jpg")
    page.locator("#identify-btn").click()
    expect(result(page, "identify-result")).to_contain_text("Unknown")
    expect(result(page, "identify-result")).to_contain_text("Closest: Barack Obama, below the match level")
    shot(page, screens, "3-identify-unknown")


def test_gallery_errors_leave_the_confirmations_usable(page, app_url: str, screens: Path) -> None:
    from playwright.sync_api import expect

    page.goto(app_url)
    tab(page, "Enroll")
    page.locator("#enroll-name textarea, #enroll-name input").first.fill("Joe Biden")
    upload(page, "enroll-files", FACES / "biden.jpg")
    page.locator("#enroll-btn").click()
    expect(result(page, "enroll-result")).to_contain_text("enrolled as Joe Biden")
    tab(page, "Gallery")
    expect(page.locator("#gallery-identities")).to_contain_text("Joe Biden")
    page.get_by_role("button", name="Remove sample").click()
    status = page.locator("#gallery-status")
    expect(status).to_contain_text("tick 'yes, remove this sample'")
    no_error_badge(page)
    sure = page.get_by_label("yes, remove this sample")
    sure.check()  # still there and usable: no badge over it
    expect(sure).to_be_checked()
    page.get_by_role("button", name="Remove identity and all its samples").click()
    expect(status).to_contain_text("type its name exactly")
    no_error_badge(page)
    box = page.get_by_label("To remove the whole identity, type its name here")
    box.fill("typed")  # usable too
    expect(box).to_have_value("typed")
    shot(page, screens, "5-gallery-error")


def test_examples_load_on_every_tab(page, app_url: str, screens: Path) -> None:
    from playwright.sync_api import expect

    page.goto(app_url)
    examples = page.locator("#verify-examples")
    examples.get_by_text("signatures: writer-01, genuine vs forgery").click()
    expect(page.locator("#verify-a img").first).to_be_visible()
    expect(page.locator("#verify-b img").first).to_be_visible()
    page.locator("#verify-btn").click()
    answer = result(page, "verify-result")
    expect(answer).to_contain_text("How far to trust this", timeout=3 * TIMEOUT_MS)  # first use loads the model
    expect(answer).to_contain_text("test writers")
    expect(page.locator("#verify-overlay img")).to_be_visible()  # the two signatures overlaid
    shot(page, screens, "1-verify-signature-example")
    # The example left "What the images show" on auto: a face photo uploaded next is compared as a face.
    upload(page, "verify-a", FACES / "obama.jpg")
    upload(page, "verify-b", FACES / "obama2.jpg")
    page.locator("#verify-btn").click()
    expect(result(page, "verify-result")).to_contain_text("Match: same person", timeout=3 * TIMEOUT_MS)
    for name in ("Enroll", "Identify", "Batch", "Gallery"):
        tab(page, name)
        expect(page.locator(f"#{name.lower()}-examples")).to_be_visible()
    tab(page, "Identify")
    page.locator("#identify-examples tbody tr").first.click()
    expect(page.locator("#identify-image img").first).to_be_visible()


def test_batch_review_page_and_csv_download(page, app_url: str, screens: Path, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    archive = tmp_path / "faces.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name in ("obama.jpg", "obama3.jpg", "biden.jpg"):
            zf.write(FACES / name, f"faces/{name}")
    pairs = tmp_path / "my pairs.csv"
    pairs.write_text(
        "reference,questioned,label\nfaces/obama.jpg,faces/obama3.jpg,1\nfaces/obama.jpg,faces/biden.jpg,0\n"
        "faces/obama.jpg,faces/missing.jpg,1\n"
    )
    page.goto(app_url)
    tab(page, "Batch")
    upload(page, "batch-csv", pairs)
    upload(page, "batch-zip", archive)
    page.locator("#batch-btn").click()
    expect(result(page, "batch-result")).to_contain_text("3 pairs checked: 2 answered, 1 not checked")
    review = page.locator("#batch-review")
    expect(review.locator("tbody tr")).to_have_count(3)
    first = review.locator("tbody tr").first
    expect(first).to_contain_text("not checked")  # the flagged row comes first
    expect(first).to_contain_text("faces/missing.jpg")
    expect(review.locator("tbody tr").nth(1).locator("img")).to_have_count(2)  # both images shown
    expect(page.get_by_text("/tmp/")).to_have_count(0)
    shot(page, screens, "4-batch")
    with page.expect_download() as info:
        page.locator("#batch-download-csv").click()
    rows = list(csv.DictReader(io.StringIO(Path(info.value.path()).read_text())))
    assert [r["decision"] for r in rows][:2] == ["match", "no match"]

    bad = tmp_path / "semicolons.csv"
    bad.write_text("a;b\nx;y\n")
    page.locator("#batch-csv").get_by_label("Clear").first.click()
    upload(page, "batch-csv", bad)
    page.locator("#batch-btn").click()
    expect(result(page, "batch-result")).to_contain_text("Not checked")
    expect(result(page, "batch-result")).to_contain_text("semicolons.csv")
    expect(result(page, "batch-result")).not_to_contain_text("/tmp")
    expect(review).to_be_hidden()  # the previous job's review is gone
    no_error_badge(page)


def test_every_tab_is_reachable_at_400_px(page, app_url: str, screens: Path) -> None:
    from playwright.sync_api import expect

    context = page.context.browser.new_context(viewport={"width": 400, "height": 800})
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    pg.goto(app_url)
    pg.wait_for_selector("#verify-btn")
    for name in ("Verify", "Enroll", "Identify", "Batch", "Gallery"):
        expect(pg.get_by_role("tab", name=name)).to_be_visible()
    expect(pg.get_by_label("More tabs")).to_be_hidden()
    pg.get_by_role("tab", name="Gallery").click()
    expect(pg.locator("#gallery-stats")).to_be_visible()
    shot(pg, screens, "6-mobile-gallery")
    context.close()


def test_page_loads_nothing_from_outside(page, app_url: str) -> None:
    origin = app_url.rstrip("/")
    outside = [u for u in page.requested if not u.startswith((origin, "data:", "blob:"))]
    assert page.requested and outside == []

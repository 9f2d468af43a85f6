"""verify.io.load_image on real files written by OpenCV and PIL."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from verify.errors import ImageTooLargeError, InvalidImageError
from verify.io import apply_orientation, image_sha256, load_image, read_bytes


@pytest.fixture
def rgb() -> np.ndarray:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (40, 64, 3), dtype=np.uint8)
    img[:10, :10] = (255, 0, 0)  # a red corner to follow through orientation and colour order
    return img


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that is only a signature and an IHDR claiming width x height (no pixel data)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    iend = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    return b"\x89PNG\r\n\x1a\n" + chunk + iend


def test_png_rgb_colour_order(tmp_path: Path, rgb: np.ndarray) -> None:
    path = tmp_path / "a.png"
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    out = load_image(path)
    assert out.dtype == np.uint8 and out.shape == (40, 64, 3)
    np.testing.assert_array_equal(out, rgb)
    assert tuple(out[0, 0]) == (255, 0, 0)
    np.testing.assert_array_equal(load_image(path.read_bytes()), rgb)
    np.testing.assert_array_equal(load_image(str(path), mode="gray"), cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))


def test_jpeg_rgb(tmp_path: Path, rgb: np.ndarray) -> None:
    path = tmp_path / "a.jpg"
    smooth = cv2.GaussianBlur(rgb, (9, 9), 3)
    cv2.imwrite(str(path), cv2.cvtColor(smooth, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 98])
    out = load_image(path)
    assert out.shape == (40, 64, 3)
    assert np.abs(out.astype(int) - smooth.astype(int)).mean() < 4


def test_gray_png(tmp_path: Path) -> None:
    gray = np.tile(np.arange(64, dtype=np.uint8) * 4, (32, 1))
    path = tmp_path / "g.png"
    cv2.imwrite(str(path), gray)
    np.testing.assert_array_equal(load_image(path, mode="gray"), gray)
    out = load_image(path)
    assert out.shape == (32, 64, 3)
    np.testing.assert_array_equal(out[:, :, 1], gray)


def test_rgba_composited_on_white(tmp_path: Path) -> None:
    rgba = np.zeros((32, 32, 4), np.uint8)  # black everywhere
    rgba[:, 16:, 3] = 255  # right half opaque black, left half fully transparent
    rgba[:8, 16:, :3] = (0, 0, 255)  # opaque blue (RGB) block
    path = tmp_path / "a.png"
    cv2.imwrite(str(path), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    out = load_image(path)
    assert (out[:, :16] == 255).all()
    assert (out[8:, 16:] == 0).all()
    assert tuple(out[0, 20]) == (0, 0, 255)


def test_gray_alpha_half_transparent(tmp_path: Path) -> None:
    la = np.zeros((20, 20, 2), np.uint8)
    la[..., 1] = 128
    path = tmp_path / "la.png"
    Image.fromarray(la, mode="LA").save(path)
    out = load_image(path, mode="gray")
    assert out.shape == (20, 20)
    assert abs(int(out[0, 0]) - 127) <= 1


def test_16bit_png_is_scaled_not_truncated(tmp_path: Path) -> None:
    img = np.zeros((20, 30, 3), np.uint16)
    img[:, :10] = 65535
    img[:, 10:20] = 257 * 100
    path = tmp_path / "deep.png"
    cv2.imwrite(str(path), img)
    assert cv2.imread(str(path), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    out = load_image(path)
    assert out.dtype == np.uint8
    assert (out[:, :10] == 255).all() and (out[:, 10:20] == 100).all() and (out[:, 20:] == 0).all()
    gray16 = (np.arange(20 * 30, dtype=np.uint32).reshape(20, 30) * 100).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "g16.png"), gray16)
    out = load_image(tmp_path / "g16.png", mode="gray")
    np.testing.assert_array_equal(out, np.round(gray16 / 257.0).astype(np.uint8))


def test_palette_png(tmp_path: Path) -> None:
    pal = Image.new("P", (24, 18))
    pal.putpalette([10, 200, 30] + [0, 0, 0] * 255)
    pal.paste(1, (0, 0, 12, 18))
    path = tmp_path / "p.png"
    pal.save(path)
    out = load_image(path)
    assert out.shape == (18, 24, 3)
    assert tuple(out[0, 20]) == (10, 200, 30) and tuple(out[0, 0]) == (0, 0, 0)


def test_exif_rotated_jpeg(tmp_path: Path, rgb: np.ndarray) -> None:
    pim = Image.fromarray(rgb)
    exif = pim.getexif()
    exif[0x0112] = 6  # stored sideways: display needs a 90 degree clockwise turn
    path = tmp_path / "phone.jpg"
    pim.save(path, quality=98, exif=exif)
    out = load_image(path)
    assert out.shape == (64, 40, 3)
    assert out[2, -3, 0] > 200 and out[2, -3, 1] < 60  # the red corner moved to the top right
    ref = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    np.testing.assert_array_equal(out, ref)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_apply_orientation_matches_pil(orientation: int) -> None:
    a = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    pim = Image.fromarray(a)
    exif = pim.getexif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    pim.save(buf, "PNG", exif=exif)
    ref = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(buf.getvalue()))))
    np.testing.assert_array_equal(apply_orientation(a, orientation), ref)


def test_truncated_jpeg(tmp_path: Path, rgb: np.ndarray) -> None:
    ok, enc = cv2.imencode(".jpg", rgb)
    assert ok
    path = tmp_path / "cut.jpg"
    path.write_bytes(enc.tobytes()[: len(enc) // 2])
    with pytest.raises(InvalidImageError, match=r"cut\.jpg.*(truncated|corrupt)"):
        load_image(path)


def test_truncated_png(tmp_path: Path, rgb: np.ndarray, capfd: pytest.CaptureFixture[str]) -> None:
    noisy = np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)  # a long image data chunk
    for image in (rgb, noisy):
        data = cv2.imencode(".png", image)[1].tobytes()
        for cut in (0.3, 0.5, 0.9, 0.999):
            capfd.readouterr()
            with pytest.raises(InvalidImageError, match=r"<bytes>: .*(truncated|corrupt)"):
                load_image(data[: int(len(data) * cut)])
            assert capfd.readouterr().err == ""  # the typed error, no libpng or OpenCV line on stderr
        assert load_image(data + b"trailing bytes").shape[:2] == image.shape[:2]
        broken = data[:12] + b"IHDX" + data[16:]  # a complete file whose first chunk is no header
        with pytest.raises(InvalidImageError, match=r"<bytes>: "):
            load_image(broken)
        assert capfd.readouterr().err == ""


def test_float32_tiff_on_the_0_255_scale(tmp_path: Path) -> None:
    gray = np.tile(np.arange(0, 256, 4, dtype=np.float32), (40, 1))  # [40, 64] values 0..252
    path = tmp_path / "scan.tif"
    assert cv2.imwrite(str(path), gray)
    np.testing.assert_array_equal(load_image(path, mode="gray"), gray.astype(np.uint8))


def test_random_bytes_and_text(tmp_path: Path) -> None:
    with pytest.raises(InvalidImageError, match=r"upload\.bin: not an image"):
        load_image(np.random.default_rng(0).bytes(500), name="upload.bin")
    text = tmp_path / "notes.txt"
    text.write_text("hello, this is not a picture\n")
    with pytest.raises(InvalidImageError, match=r"notes\.txt: not an image"):
        load_image(text)


def test_zero_byte_and_missing(tmp_path: Path) -> None:
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(InvalidImageError, match=r"empty\.png: empty file"):
        load_image(empty)
    with pytest.raises(InvalidImageError, match=r"nope\.png: no such file"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(InvalidImageError, match="not a file"):
        load_image(tmp_path)
    long_name = tmp_path / ("n" * 300) / "a.png"  # a name over the file system's 255: stat() raises ENAMETOOLONG
    with pytest.raises(InvalidImageError, match=r"\(\d+ characters\): no such file \(the path or one of its names"):
        load_image(long_name)


def test_too_small(tmp_path: Path) -> None:
    path = tmp_path / "tiny.png"
    cv2.imwrite(str(path), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(InvalidImageError, match=r"tiny\.png: image is 4x4.*minimum side 16"):
        load_image(path)
    assert load_image(path, min_side=4).shape == (4, 4, 3)


def test_bomb_real_png(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    cv2.imwrite(str(path), np.zeros((6000, 8000), np.uint8))
    assert path.stat().st_size < 200_000
    with pytest.raises(ImageTooLargeError, match=r"big\.png: image is 8000x6000"):
        load_image(path, max_pixels=10_000_000)


@pytest.mark.parametrize("side", [9000, 20000])
def test_bomb_header_only(side: int) -> None:
    # There is no pixel data, so only a header check can raise the "too large" error.
    with pytest.raises(ImageTooLargeError, match="<bytes>: image is ") as exc:
        load_image(_png_header_only(side, side))
    assert "the largest accepted is 40 megapixels (scan or export it at a lower resolution)" in str(exc.value)
    assert "attack" not in str(exc.value) and "Image size" not in str(exc.value)  # not the image library's words


def test_max_bytes(tmp_path: Path, rgb: np.ndarray) -> None:
    path = tmp_path / "a.png"
    cv2.imwrite(str(path), rgb)
    with pytest.raises(ImageTooLargeError, match="; the largest accepted is 100 bytes"):
        load_image(path, max_bytes=100)
    with pytest.raises(ImageTooLargeError):
        read_bytes(path.read_bytes(), max_bytes=100)


def test_array_and_pil_inputs(rgb: np.ndarray) -> None:
    np.testing.assert_array_equal(load_image(rgb), rgb)
    f = np.linspace(0, 1, 32 * 32, dtype=np.float32).reshape(32, 32)
    out = load_image(f, mode="gray")
    assert out[0, 0] == 0 and out[-1, -1] == 255
    np.testing.assert_array_equal(load_image(f * 255, mode="gray"), out)  # float on the 0-255 scale
    with pytest.raises(InvalidImageError, match=r"<array>: float image values span"):
        load_image(f * 300)
    with pytest.raises(InvalidImageError, match="NaN"):
        load_image(np.full((20, 20), np.nan))
    with pytest.raises(InvalidImageError, match="shape"):
        load_image(np.zeros((20, 20, 5), np.uint8))
    np.testing.assert_array_equal(load_image(Image.fromarray(rgb)), rgb)
    assert load_image(Image.fromarray(rgb).convert("P")).shape == (40, 64, 3)
    with pytest.raises(ImageTooLargeError):
        load_image(rgb, max_pixels=100)
    with pytest.raises(InvalidImageError, match="cannot read an image from int"):
        load_image(3)


def test_image_sha256(rgb: np.ndarray) -> None:
    assert image_sha256(b"abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert image_sha256(rgb) == image_sha256(rgb.copy())
    assert image_sha256(rgb) != image_sha256(rgb.reshape(64, 40, 3))

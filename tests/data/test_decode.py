"""Every bad-file case is converted correctly or skipped with a reason (files made here)."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from dsbias.data.decode import DecodeError, decode_image


def _save(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _png16_rgb(arr: np.ndarray) -> bytes:
    """A 16-bit-per-channel RGB PNG written by hand (PIL cannot write one)."""
    h, w, _ = arr.shape

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    raw = b"".join(b"\x00" + arr[y].astype(">u2").tobytes() for y in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("payload,reason", [(b"", "empty"), (b"GIF89a-not-really", "not_an_image")])
def test_decode_errors(payload, reason):
    with pytest.raises(DecodeError) as e:
        decode_image(payload)
    assert e.value.reason == reason


def test_decode_modes_become_rgb(tmp_path):
    cmyk = tmp_path / "c.jpg"
    Image.new("CMYK", (8, 8), (0, 255, 0, 0)).save(cmyk)
    img, info = decode_image(cmyk)
    assert img.mode == "RGB" and info.format == "JPEG"
    g16 = tmp_path / "g16.png"
    Image.fromarray(np.full((8, 8), 32768, dtype=np.uint16)).save(g16)
    img, _ = decode_image(g16)
    assert img.mode == "RGB" and 120 <= np.asarray(img)[0, 0, 0] <= 135  # mid-grey, not clipped white


def test_exif_orientation_6_is_applied():
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :20] = (255, 0, 0)  # stored: red left, blue right
    arr[:, 20:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    img, info = decode_image(_save(Image.fromarray(arr), "JPEG", quality=95, exif=exif.tobytes()))
    assert img.size == (20, 40) and (info.width, info.height) == (20, 40)
    top, bottom = np.asarray(img)[2, 10], np.asarray(img)[-3, 10]
    assert top[0] > 200 > top[2] and bottom[2] > 200 > bottom[0]  # red on top after rotation


def test_palette_with_transparency_and_la():
    pal = Image.new("P", (8, 8), 1)
    pal.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    pal.info["transparency"] = 0
    img, info = decode_image(_save(pal, "PNG", transparency=0))
    assert img.mode == "RGB" and info.mode == "P" and tuple(np.asarray(img)[0, 0]) == (10, 200, 30)
    la = Image.merge("LA", [Image.new("L", (8, 8), 77), Image.new("L", (8, 8), 0)])
    img, info = decode_image(_save(la, "PNG"))
    assert info.mode == "LA" and tuple(np.asarray(img)[3, 3]) == (77, 77, 77)


def test_16bit_rgb_and_grey_keep_their_range():
    arr = np.zeros((4, 4, 3), np.uint16)
    arr[..., 0], arr[..., 1] = 65535, 32896  # full red, half green
    img, info = decode_image(_png16_rgb(arr))
    assert img.mode == "RGB" and info.format == "PNG"
    assert tuple(np.asarray(img)[0, 0]) == (255, 128, 0)
    g16 = _save(Image.fromarray(np.full((8, 8), 32768, dtype=np.uint16)), "PNG")
    assert 120 <= np.asarray(decode_image(g16)[0])[0, 0, 0] <= 135


def test_cmyk_jpeg_becomes_rgb():
    img, info = decode_image(_save(Image.new("CMYK", (8, 8), (0, 255, 255, 0)), "JPEG"))
    assert info.mode == "CMYK" and img.mode == "RGB"
    r, g, b = np.asarray(img)[4, 4].astype(int)
    assert r > 200 and g < 60 and b < 60  # magenta + yellow ink = red


@pytest.mark.parametrize("case", ["truncated_jpeg", "truncated_png", "empty", "text", "html"])
def test_bad_bytes_are_refused_with_a_reason(case):
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8))
    jpg, png = _save(noise, "JPEG"), _save(noise, "PNG")
    payload, reason = {"truncated_jpeg": (jpg[: len(jpg) // 2], "truncated"),
                       "truncated_png": (png[: len(png) // 2], "truncated"),
                       "empty": (b"", "empty"),
                       "text": (b"just some text", "not_an_image"),
                       "html": (b"<html><body>404 Not Found</body></html>", "not_an_image")}[case]
    with pytest.raises(DecodeError) as e:
        decode_image(payload)
    assert e.value.reason == reason


def test_decompression_bombs_are_refused(monkeypatch, tmp_path):
    p = tmp_path / "bomb.png"
    Image.new("L", (300, 300)).save(p)
    with pytest.raises(DecodeError) as e:
        decode_image(p, max_pixels=300 * 299)
    assert e.value.reason == "too_large"
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # PIL's own guard (header claims a huge image)
    with pytest.raises(DecodeError) as e:
        decode_image(p)
    assert e.value.reason == "too_large"
    with pytest.raises(DecodeError) as e:
        decode_image(tmp_path / "absent.png")
    assert e.value.reason == "missing"


def test_hash_is_of_the_bytes():
    data = _save(Image.new("RGB", (4, 4)), "PNG")
    import hashlib

    assert decode_image(data)[1].sha1 == hashlib.sha1(data).hexdigest()

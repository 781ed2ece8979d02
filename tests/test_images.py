"""Tests of denoise.io.images with real files written by Pillow into tmp_path."""

import errno
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image, ImageCms, JpegImagePlugin, PngImagePlugin

from denoise.errors import ImageError
from denoise.io import images
from denoise.io.images import (
    array_to_uint8,
    read_image,
    save_array,
    save_image,
    to_float,
)

RNG = np.random.default_rng(7)


def _random(shape, dtype=np.uint8):
    return RNG.integers(0, np.iinfo(dtype).max + 1, shape, dtype=dtype)


def _smooth_rgb(height=32, width=48):
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 5, y * 7, (x + y) * 2], -1).astype(np.uint8)


def _palette_image():
    image = Image.frombytes("P", (13, 9), _random((9, 13)).astype(np.uint8) % 16)
    image.putpalette(_random(48).tolist())
    return image


def _cmyk(array):
    return Image.frombytes("CMYK", array.shape[1::-1], array.tobytes())


def _sRGB_profile():
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _exif(orientation=6):
    exif = Image.Exif()
    exif[274] = orientation
    exif[271] = "TestCam"
    return exif


LOSSLESS = {
    "l.png": lambda: Image.fromarray(_random((9, 13))),
    "rgb.png": lambda: Image.fromarray(_random((9, 13, 3))),
    "rgba.png": lambda: Image.fromarray(_random((9, 13, 4))),
    "la.png": lambda: Image.fromarray(_random((9, 13, 2))),
    "sixteen.png": lambda: Image.fromarray(_random((9, 13), np.uint16)),
    "sixteen.tif": lambda: Image.fromarray(_random((9, 13), np.uint16)),
    "palette.png": _palette_image,
    "bilevel.png": lambda: Image.fromarray(_random((9, 13)) > 127),
    "float.tif": lambda: Image.fromarray(RNG.random((9, 13), dtype=np.float32)),
    "rgb.bmp": lambda: Image.fromarray(_random((9, 13, 3))),
    "rgba.tif": lambda: Image.fromarray(_random((9, 13, 4))),
}


@pytest.mark.parametrize("name", sorted(LOSSLESS))
def test_lossless_round_trip_keeps_mode_format_size_and_pixels(tmp_path, name):
    source, dest = tmp_path / name, tmp_path / "out" / name
    LOSSLESS[name]().save(source)
    loaded = read_image(source)
    assert loaded.pixels.dtype == np.float32 and 0 <= loaded.pixels.min() <= loaded.pixels.max() <= 1
    assert loaded.pixels.shape[-1] in (1, 3)
    save_image(loaded, loaded.pixels, dest)
    before, after = Image.open(source), Image.open(dest)
    assert (after.mode, after.format, after.size) == (before.mode, before.format, before.size)
    np.testing.assert_array_equal(np.asarray(after), np.asarray(before))


def test_sixteen_bit_keeps_values_above_255(tmp_path):
    values = np.array([[0, 300, 40000, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "a.png")
    loaded = read_image(tmp_path / "a.png")
    np.testing.assert_allclose(loaded.pixels[..., 0], values / 65535, rtol=1e-6)
    save_image(loaded, loaded.pixels * 0.5, tmp_path / "b.png")
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "b.png")), np.floor(values / 2 + 0.5))


def test_alpha_is_untouched_while_colour_changes(tmp_path):
    rgba = _random((9, 13, 4))
    Image.fromarray(rgba).save(tmp_path / "a.png")
    loaded = read_image(tmp_path / "a.png")
    assert loaded.pixels.shape == (9, 13, 3)
    save_image(loaded, 1 - loaded.pixels, tmp_path / "b.png")
    written = np.asarray(Image.open(tmp_path / "b.png"))
    np.testing.assert_array_equal(written[..., 3], rgba[..., 3])
    np.testing.assert_array_equal(written[..., :3], 255 - rgba[..., :3])


def test_palette_with_transparency_is_written_as_rgba_with_its_alpha(tmp_path):
    image = _palette_image()
    image.info["transparency"] = 0
    image.save(tmp_path / "p.png", transparency=0)
    loaded = read_image(tmp_path / "p.png")
    save_image(loaded, loaded.pixels, tmp_path / "o.png")
    written = Image.open(tmp_path / "o.png")
    assert written.mode == "RGBA"
    np.testing.assert_array_equal(np.asarray(written), np.asarray(Image.open(tmp_path / "p.png").convert("RGBA")))


def test_cmyk_jpeg_comes_back_cmyk_with_its_black_plate(tmp_path):
    smooth = _smooth_rgb()
    cmyk = np.concatenate([smooth, np.full(smooth.shape[:2] + (1,), 60, np.uint8)], axis=-1)
    _cmyk(cmyk).save(tmp_path / "c.jpg", quality=95)
    loaded = read_image(tmp_path / "c.jpg")
    assert loaded.pixels.shape == (32, 48, 3)
    save_image(loaded, loaded.pixels, tmp_path / "o.jpg")
    before, after = Image.open(tmp_path / "c.jpg"), Image.open(tmp_path / "o.jpg")
    assert (after.mode, after.format, after.size) == ("CMYK", "JPEG", before.size)
    difference = np.abs(np.asarray(after).astype(int) - np.asarray(before).astype(int))
    assert difference.max() <= 2


def test_jpeg_keeps_exif_orientation_icc_and_stored_pixels(tmp_path):
    source, dest = tmp_path / "a.jpg", tmp_path / "b.jpg"
    profile = _sRGB_profile()
    Image.fromarray(_smooth_rgb()).save(source, exif=_exif(6), icc_profile=profile, dpi=(300, 300))
    loaded = read_image(source)
    assert loaded.pixels.shape == (32, 48, 3)  # stored, not rotated
    save_image(loaded, loaded.pixels, dest)
    before, after = Image.open(source), Image.open(dest)
    assert after.info["exif"] == before.info["exif"]
    assert after.getexif()[274] == 6 and after.getexif()[271] == "TestCam"
    assert after.info["icc_profile"] == profile
    assert after.info["dpi"] == pytest.approx((300, 300))
    assert after.size == (48, 32)


@pytest.mark.parametrize("subsampling", [0, 2])
def test_jpeg_keeps_subsampling_and_uses_quality_95(tmp_path, subsampling):
    Image.fromarray(_smooth_rgb()).save(tmp_path / "a.jpg", quality=60, subsampling=subsampling)
    loaded = read_image(tmp_path / "a.jpg")
    save_image(loaded, loaded.pixels, tmp_path / "b.jpg")
    Image.fromarray(_smooth_rgb()).save(tmp_path / "reference.jpg", quality=95)
    after = Image.open(tmp_path / "b.jpg")
    assert JpegImagePlugin.get_sampling(after) == subsampling
    assert after.quantization == Image.open(tmp_path / "reference.jpg").quantization


def test_png_keeps_text_exif_dpi_and_icc(tmp_path):
    text = PngImagePlugin.PngInfo()
    text.add_text("Title", "Grandmother's kitchen")
    text.add_itxt("Caption", "Küche in Zürich")
    Image.fromarray(_random((9, 13, 3))).save(tmp_path / "a.png", pnginfo=text, exif=_exif(3), dpi=(150, 150),
                                              icc_profile=_sRGB_profile())
    loaded = read_image(tmp_path / "a.png")
    save_image(loaded, loaded.pixels, tmp_path / "b.png")
    after = Image.open(tmp_path / "b.png")
    after.load()
    assert after.text == {"Title": "Grandmother's kitchen", "Caption": "Küche in Zürich"}
    assert after.getexif()[274] == 3
    assert after.info["dpi"] == pytest.approx((150, 150), abs=0.1)
    assert after.info["icc_profile"] == _sRGB_profile()


def test_tiff_keeps_compression_and_exif_and_shows_the_same_way(tmp_path):
    Image.fromarray(_random((9, 13, 3))).save(tmp_path / "a.tif", compression="tiff_lzw", exif=_exif(6))
    loaded = read_image(tmp_path / "a.tif")
    save_image(loaded, loaded.pixels, tmp_path / "b.tif")
    before, after = Image.open(tmp_path / "a.tif"), Image.open(tmp_path / "b.tif")
    assert after.info["compression"] == "tiff_lzw"
    assert after.getexif()[271] == "TestCam"
    np.testing.assert_array_equal(np.asarray(after), np.asarray(before))  # as Pillow shows them, orientation applied


@pytest.mark.parametrize("lossless", [True, False])
def test_webp_keeps_lossless_or_lossy(tmp_path, lossless):
    Image.fromarray(_smooth_rgb()).save(tmp_path / "a.webp", lossless=lossless, quality=80)
    loaded = read_image(tmp_path / "a.webp")
    assert loaded.info.get("lossless", False) is lossless
    save_image(loaded, loaded.pixels, tmp_path / "b.webp")
    after = np.asarray(Image.open(tmp_path / "b.webp")).astype(int)
    before = np.asarray(Image.open(tmp_path / "a.webp")).astype(int)
    assert np.abs(after - before).max() == 0 if lossless else np.abs(after - before).mean() < 2


def _make_truncated_png(path):
    Image.fromarray(_random((64, 64, 3))).save(path)
    path.write_bytes(path.read_bytes()[:3000])


def _make_truncated_jpeg(path):
    Image.fromarray(_random((64, 64, 3))).save(path)
    path.write_bytes(path.read_bytes()[:2000])


BROKEN = {
    "missing.png": lambda path: None,
    "empty.png": lambda path: path.write_bytes(b""),
    "notes.jpg": lambda path: path.write_text("these are my notes, not a photo"),
    "cut.png": _make_truncated_png,
    "cut.jpg": _make_truncated_jpeg,
    "pages.tif": lambda path: Image.new("L", (4, 4)).save(path, save_all=True, append_images=[Image.new("L", (4, 4))]),
    "lab.tif": lambda path: Image.new("LAB", (4, 4)).save(path),
    "big float.tif": lambda path: Image.fromarray(np.full((4, 4), 7.5, np.float32)).save(path),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_unreadable_files_raise_an_error_naming_the_file(tmp_path, name):
    path = tmp_path / name
    BROKEN[name](path)
    with pytest.raises(ImageError, match=name):
        read_image(path)


def test_decompression_bomb_is_refused(tmp_path, monkeypatch):
    Image.new("L", (64, 64)).save(tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(ImageError, match="bomb.png.*safety limit"):
        read_image(tmp_path / "bomb.png")


def test_save_creates_folders_and_leaves_no_temp_file(tmp_path):
    Image.fromarray(_random((9, 13))).save(tmp_path / "a.png")
    loaded = read_image(tmp_path / "a.png")
    save_image(loaded, loaded.pixels, tmp_path / "deep" / "er" / "a.png")
    assert os.listdir(tmp_path / "deep" / "er") == ["a.png"]


def test_failed_write_keeps_the_old_file_and_removes_the_temp_file(tmp_path, monkeypatch):
    Image.fromarray(_random((9, 13))).save(tmp_path / "a.png")
    loaded = read_image(tmp_path / "a.png")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.png").write_bytes(b"previous version")

    def disk_full(descriptor):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(images.os, "fsync", disk_full)
    with pytest.raises(ImageError, match=r"a\.png.*disk is full"):
        save_image(loaded, loaded.pixels, tmp_path / "out" / "a.png")
    assert os.listdir(tmp_path / "out") == ["a.png"]
    assert (tmp_path / "out" / "a.png").read_bytes() == b"previous version"


def test_write_past_the_file_size_limit_fails_cleanly(tmp_path):
    # A real short write: the kernel refuses bytes past RLIMIT_FSIZE, as it would on a full disk.
    script = textwrap.dedent(f"""
        import os, resource, signal, sys
        import numpy as np
        from denoise.errors import ImageError
        from denoise.io.images import save_array
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        noise = np.random.default_rng(0).random((128, 128, 3), dtype=np.float32)
        try:
            save_array(noise, {str(tmp_path / "big.png")!r})
        except ImageError as exc:
            print("ImageError:", exc)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert "ImageError:" in done.stdout and "big.png" in done.stdout, done.stderr
    assert os.listdir(tmp_path) == ["home"]  # only conftest's folder: no output, no temp file


def test_save_refuses_pixels_of_another_shape(tmp_path):
    Image.fromarray(_random((9, 13))).save(tmp_path / "a.png")
    loaded = read_image(tmp_path / "a.png")
    with pytest.raises(ImageError, match="shape"):
        save_image(loaded, np.zeros((9, 13, 3), np.float32), tmp_path / "b.png")
    assert not (tmp_path / "b.png").exists()


def test_save_array_writes_8_bit_images(tmp_path):
    gray = RNG.random((5, 7, 1), dtype=np.float32)
    save_array(gray, tmp_path / "g.png")
    save_array(np.full((5, 7, 3), 2.0, np.float32), tmp_path / "c.png")
    assert Image.open(tmp_path / "g.png").mode == "L"
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "g.png")), array_to_uint8(gray)[..., 0])
    assert np.asarray(Image.open(tmp_path / "c.png")).min() == 255  # clipped, not wrapped around


def test_to_float_and_back_is_exact_for_every_8_bit_value():
    values = np.arange(256, dtype=np.uint8).reshape(16, 16)
    np.testing.assert_array_equal(array_to_uint8(to_float(values))[..., 0], values)

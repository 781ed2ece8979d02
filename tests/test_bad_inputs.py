"""`denoise run` over one folder of bad and unusual files, all made here: each is cleaned right or named as failed.

Every file is built by the test (no binary fixtures). The run goes through Typer's in-process runner so that
Pillow's decompression-bomb limit can be lowered with monkeypatch instead of writing a gigapixel file.
"""

import builtins
import errno
import hashlib
import io
import json
import os
import struct

import numpy as np
import pytest
from factories import smooth_image
from PIL import Image, ImageCms
from typer.testing import CliRunner

from denoise.cli import app
from denoise.inference import denoiser as inference
from denoise.inference import settings

BOMB_LIMIT = 400_000  # lowered limit: the 3x100000 strip stays under it, the 1000x1000 "bomb" is over twice it
TILE = 64
ORIENTATION = 274


def _gray(height, width, seed=0):
    return Image.fromarray(smooth_image(height, width, 1, seed)[..., 0])


def _rgb(height, width, seed=0):
    return Image.fromarray(smooth_image(height, width, 3, seed))


def _truncated(path, fmt):
    _rgb(64, 64).save(path, format=fmt)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _cmyk_jpeg(path):
    rgb = smooth_image(24, 32, 3)
    black = np.full((24, 32, 1), 40, np.uint8)
    Image.fromarray(np.concatenate([rgb, black], -1), "CMYK").save(path, quality=95)


def _transparent_palette(path):
    image = _rgb(20, 30).quantize(16)
    image.save(path, transparency=3)


def _sixteen_bit(path):
    ramp = np.linspace(0, 65535, 23 * 17).reshape(23, 17).astype(np.uint16)
    Image.fromarray(ramp).save(path)


def _float_tiff(path):
    Image.fromarray(smooth_image(15, 21, 1)[..., 0].astype(np.float32) / 255).save(path)


def _rotated_jpeg(path):
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    exif[271] = "TestCam"
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    _rgb(30, 40).save(path, exif=exif, icc_profile=profile, dpi=(300, 300), quality=90)


def _frames(path, fmt):
    frames = [_rgb(16, 16, seed) for seed in range(3)]
    frames[0].save(path, format=fmt, save_all=True, append_images=frames[1:])


def _broken_second_page(path):
    """A two-page TIFF whose second page lacks its width: Pillow fails while counting the pages, not loading."""
    buffer = io.BytesIO()
    Image.new("L", (4, 4)).save(buffer, format="TIFF", save_all=True, append_images=[Image.new("L", (4, 4))])
    data = bytearray(buffer.getvalue())
    first = struct.unpack_from("<I", data, 4)[0]
    second = struct.unpack_from("<I", data, first + 2 + 12 * struct.unpack_from("<H", data, first)[0])[0]
    for entry in range(struct.unpack_from("<H", data, second)[0]):
        at = second + 2 + 12 * entry
        if struct.unpack_from("<H", data, at)[0] == 256:  # ImageWidth becomes an unknown tag
            struct.pack_into("<H", data, at, 65000)
    path.write_bytes(bytes(data))


# name -> how to make it. Names carry spaces and non-ASCII letters on purpose.
GOOD = {
    "one pixel.png": lambda p: _gray(1, 1).save(p),
    "strip.png": lambda p: _gray(3, 100_000).save(p),
    "cmyk.jpg": _cmyk_jpeg,
    "palette.png": lambda p: _rgb(20, 30).quantize(16).save(p),
    "palette transparent.png": _transparent_palette,
    "la.png": lambda p: Image.fromarray(np.stack([smooth_image(18, 14)[..., 0]] * 2, -1), "LA").save(p),
    "sixteen.png": _sixteen_bit,
    "sixteen.tif": _sixteen_bit,
    "float.tif": _float_tiff,
    "rotated exif ü.jpg": _rotated_jpeg,
    "sub dir ü/café 日本.png": lambda p: _rgb(21, 13).save(p),
}
BAD = {  # name -> words the failure reason must contain
    "empty.png": (lambda p: p.write_bytes(b""), "empty"),
    "cut.png": (lambda p: _truncated(p, "PNG"), "truncated or corrupt"),
    "cut.jpg": (lambda p: _truncated(p, "JPEG"), "truncated or corrupt"),
    "notes.jpg": (lambda p: p.write_text("my shopping list, not a photo"), "not an image"),
    "bomb.png": (lambda p: Image.new("L", (1000, 1000)).save(p), "safety limit"),
    "pages.tif": (lambda p: _frames(p, "TIFF"), "3 frames"),
    "broken page.tif": (_broken_second_page, "truncated or corrupt"),
    "animated.png": (lambda p: _frames(p, "PNG"), "3 frames"),
    "locked.png": (lambda p: _gray(8, 8).save(p), "permission denied"),
    "sub dir ü/loop": (lambda p: os.symlink("..", p), "loop"),
}


def _make(root, corpus):
    for name, make in corpus.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        make(path)


def _hashes(root):
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.is_symlink() and "loop" not in p.parts}


@pytest.fixture
def model_calls(monkeypatch):
    """Shapes of every batch handed to the model, to show that big images go in as bounded tiles."""
    shapes, real_init = [], inference.Denoiser.__init__

    def recording_init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        predict = self._predict_batch  # every model call goes through it, on either runtime
        self._predict_batch = lambda batch: (shapes.append(batch.shape), predict(batch))[1]

    monkeypatch.setattr(inference.Denoiser, "__init__", recording_init)
    return shapes


@pytest.fixture
def locked_file(monkeypatch):
    """Make reads of files named locked.png fail as chmod 000 would (root ignores permission bits)."""
    real_open = builtins.open

    def guarded_open(file, mode="r", *args, **kwargs):
        if str(file).endswith("locked.png") and "r" in mode:
            raise PermissionError(errno.EACCES, "Permission denied", str(file))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded_open)


def _run(source, model_file, report, *extra):
    args = ["run", source, "--model", model_file, "--report", report, "--tile", TILE, "-q", *extra]
    return CliRunner().invoke(app, [str(a) for a in args])


def _check_same_kind(source, output):
    """The output keeps the input's size, mode, format, orientation, ICC profile and dpi, and decodes fully."""
    with Image.open(source) as before, Image.open(output) as after:
        after.load()
        expected_mode = "RGBA" if before.mode == "P" and "transparency" in before.info else before.mode
        assert (after.size, after.mode, after.format) == (before.size, expected_mode, before.format), output
        assert after.getexif().get(ORIENTATION) == before.getexif().get(ORIENTATION)
        for key in ("icc_profile", "dpi"):
            assert after.info.get(key) == pytest.approx(before.info.get(key)), (output, key)
        if expected_mode != before.mode:  # a transparent palette comes back RGBA and must look the same
            np.testing.assert_array_equal(np.asarray(after)[..., 3], np.asarray(before.convert("RGBA"))[..., 3])


def test_every_file_is_cleaned_right_or_named_as_failed(tmp_path, model_file, model_calls, locked_file,
                                                        monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", BOMB_LIMIT)
    root = tmp_path / "mixed"
    _make(root, GOOD)
    _make(root, {name: make for name, (make, _) in BAD.items()})
    _gray(9, 9).save(root / "animation.gif", save_all=True, append_images=[_gray(9, 9, 1)])  # a type not read
    (root / "notes.txt").write_text("not an image type: passed over without a word")
    before = _hashes(root)

    result = _run(root, model_file, tmp_path / "report.json")

    assert result.exit_code == 1, result.output
    assert f"{len(GOOD)} done, 1 skipped (1 of types denoise does not read: 1 .gif;" in result.output
    assert f"{len(BAD)} failed" in result.output and "notes.txt" not in result.output
    files = {os.path.relpath(f["source"], root): f for f in json.loads((tmp_path / "report.json").read_text())["files"]}
    assert sorted(files) == sorted([*GOOD, *BAD, "animation.gif"])  # the GIF is named as skipped; the .txt is not
    assert files["animation.gif"]["status"] == "skipped" and "convert it to PNG" in files["animation.gif"]["reason"]
    out = tmp_path / "mixed-denoised"
    for name in GOOD:
        assert files[name]["status"] == "done", files[name]
        _check_same_kind(root / name, out / name)
    for name, (_, words) in BAD.items():
        entry = files[name]
        assert entry["status"] == "failed" and words in entry["reason"], entry
        assert os.path.basename(name) in entry["reason"], entry
        assert not (out / name).exists()
    assert _hashes(root) == before  # inputs byte for byte as they were
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]  # no temp files left


def test_a_long_strip_is_cleaned_in_bounded_tiles_and_keeps_its_shape(tmp_path, model_file, model_calls):
    root = tmp_path / "strip"
    _make(root, {"strip.png": GOOD["strip.png"]})
    result = _run(root, model_file, tmp_path / "report.json")
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "strip-denoised" / "strip.png") as image:
        assert (image.size, image.mode) == ((100_000, 3), "L")
    assert len(model_calls) > 1
    window = TILE + 2 * settings.DEFAULT_MARGIN
    for count, height, width, _ in model_calls:
        assert height <= window and width <= window
        assert count * height * width <= max(settings.MAX_BATCH_PIXELS, window * window)


def test_a_folder_of_only_good_files_exits_0(tmp_path, model_file):
    root = tmp_path / "good"
    _make(root, GOOD)
    result = _run(root, model_file, tmp_path / "report.json")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["ok"] is True and report["counts"] == {"done": len(GOOD), "skipped": 0, "failed": 0}

"""The HTML report of `denoise run --html` and `denoise eval --html`: real runs, real files, and a real headless
Chromium that loads the pages and checks that every picture on them loaded."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from factories import smooth_image
from PIL import Image
from typer.testing import CliRunner

from denoise.batch.runner import DONE, FAILED, FileResult
from denoise.cli import app
from denoise.io import images
from denoise.report.assets import CROP, VIEW, make_assets
from denoise.report.html import HtmlReport

SAMPLES = Path(__file__).parents[1] / "samples"
BROWSER = next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome")
                if shutil.which(name)), None)
# Added to a copy of a page only, in the test: the report itself has no script.
CHECK = """<script>window.addEventListener('load', () => {
  const broken = [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src'));
  document.body.setAttribute('data-checked', JSON.stringify({count: document.images.length, broken}));
});</script></body>"""


def run(*args):
    return CliRunner().invoke(app, [str(arg) for arg in args])


@pytest.fixture(scope="module")
def reported_run(tmp_path_factory):
    """`denoise run --html` on real noisy samples, a clean image and a broken file, with the shipped models."""
    root = tmp_path_factory.mktemp("report")
    photos = root / "photos"
    (photos / "trip").mkdir(parents=True)
    Image.open(SAMPLES / "noisy" / "camera.png").crop((0, 0, 160, 160)).save(photos / "camera.png")
    Image.open(SAMPLES / "noisy-camera" / "coffee.jpg").crop((0, 0, 200, 160)).save(photos / "trip" / "coffee.png")
    (photos / "broken.png").write_bytes(b"not an image")
    reads = []
    original = images.read_image

    def counting(path):
        reads.append(Path(path).name)
        return original(path)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("denoise.batch.runner.read_image", counting)
        result = run("run", photos, "--out", root / "clean", "--html", root / "report", "-q")
    return root, result, reads


def test_run_writes_an_index_with_the_failure_first_and_a_page_per_image(reported_run):
    root, result, reads = reported_run
    assert result.exit_code == 1, result.output  # the broken file fails the run, and is in the report
    assert f"report: {root / 'report' / 'index.html'}" in result.output
    index = (root / "report" / "index.html").read_text()
    assert index.index("broken.png") < index.index("camera.png")  # failures first
    assert "not an image Pillow can read" in index
    assert "trip/coffee.png" in index and "camera-colour" in index and "gaussian" in index
    pages = sorted((root / "report" / "pages").glob("*.html"))
    assert len(pages) == 2
    assert "<script" not in index and all("<script" not in page.read_text() for page in pages)
    assert sorted(reads) == ["broken.png", "camera.png", "coffee.png"]  # each input decoded once, by the run


def test_the_report_is_light_thumbnails_and_crops_not_full_copies(reported_run):
    root, _, _ = reported_run
    for path in (root / "report" / "images").iterdir():
        with Image.open(path) as picture:
            assert max(picture.size) <= VIEW, path.name
            if "-most-" in path.name or "-least-" in path.name:
                assert picture.size == (CROP, CROP)


@pytest.mark.skipif(BROWSER is None, reason="no Chromium: tests/install-browser.sh installs it (as root)")
def test_every_picture_of_the_report_loads_in_a_headless_browser(reported_run, tmp_path):
    root, _, _ = reported_run
    report = root / "report"
    for page in [report / "index.html", *sorted((report / "pages").glob("*.html"))]:
        checked = page.with_name(f"checked-{page.name}")
        checked.write_text(page.read_text().replace("</body>", CHECK))
        done = subprocess.run([BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
                               f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000", "--dump-dom",
                               checked.as_uri()], capture_output=True, text=True, timeout=120)
        found = re.search(r"data-checked=\"([^\"]*)\"", done.stdout)
        assert found, f"{page.name}: the page did not finish loading\n{done.stderr[-2000:]}"
        result = json.loads(found.group(1).replace("&quot;", '"'))
        assert result["broken"] == [] and result["count"] >= (4 if page.name == "index.html" else 7), (page, result)


def test_assets_mark_where_the_output_changed_most_and_least(tmp_path):
    before = smooth_image(192, 192, 3)
    after = before.astype(np.float32) / 255
    after[128:192, 64:128] = 0.5  # one block changed a lot, the rest not at all
    assets = make_assets(before, after, tmp_path / "images", "00000")
    assert assets.crops["most"] == (64, 128)
    assert assets.crops["least"] != (64, 128)
    expected = np.sqrt(np.mean((np.round(after * 255) - before) ** 2))
    assert assets.rms_change == pytest.approx(expected, rel=1e-4)
    removed = np.asarray(Image.open(tmp_path / assets.files["map"])).astype(int) - 128  # a JPEG: nearly exact
    assert np.abs(removed[:112]).max() <= 3  # mid-gray where nothing changed
    assert np.abs(removed[136:, 72:120]).mean() > 20


def test_the_index_lists_failed_then_unchanged_then_the_rest(tmp_path):
    report = HtmlReport(tmp_path / "report", "test")
    image = smooth_image(64, 64, 1)
    for name in ("a.png", "b.png"):
        report.add(name, image, image.astype(np.float32) / 255)
    results = [("a.png", FileResult(Path("a.png"), Path("out/a.png"), DONE, seconds=0.5)),
               ("b.png", FileResult(Path("b.png"), Path("out/b.png"), DONE, seconds=0.5, unchanged=True)),
               ("c.png", FileResult(Path("c.png"), Path("out/c.png"), FAILED, "c.png is truncated"))]
    index = report.write(results).read_text()
    assert index.index("c.png") < index.index("b.png") < index.index("a.png")
    assert "1 left unchanged" in index and "c.png is truncated" in index


def test_eval_writes_the_same_kind_of_page_with_psnr_and_ssim(tmp_path):
    clean = tmp_path / "clean"
    clean.mkdir()
    Image.open(SAMPLES / "clean" / "camera.png").crop((0, 0, 96, 96)).save(clean / "camera.png")
    result = run("eval", "gaussian", "--path", clean, "--noise", "gaussian:25", "--html", tmp_path / "report")
    assert result.exit_code == 0, result.output
    page = next((tmp_path / "report" / "pages").glob("*.html")).read_text()
    psnr = float(re.search(r"PSNR denoised: ([\d.]+) dB", page).group(1))
    assert f"{psnr:6.2f}" in result.output and "SSIM noisy" in page and "gaussian:25 (added)" in page

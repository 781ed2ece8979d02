"""Every `denoise` command in the README's bash blocks runs, in README order, and succeeds.

The commands run as written, in a workspace holding the files they name (small generated images, a user's model,
MNIST-format files in the Keras cache), through the real CLI in this process. Two things are changed, and only
these: training is shortened (--epochs scaled down to a tenth, at least 1; --steps-per-epoch capped at 2), since the
test checks that each command works, not how long it trains. A block preceded by `<!-- readme-test: skip REASON -->`
is not run (a cluster job script); anything else that is not a `denoise` command (pip, pytest) is only allowed in
the set-up blocks.
"""

import re
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest
from factories import mnist_cache, smooth_image, write_image_folder
from PIL import Image
from typer.testing import CliRunner

from denoise.cli import app
from denoise.noise.specs import add_noise, parse_noise

REPO = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"(<!-- readme-test: skip[^>]*-->\s*\n)?```bash\n(.*?)```", re.S)
NOT_DENOISE = {("pip", "install"), ("ruff", "check"), ("python", "-m"), ("bash", "tests/install-browser.sh")}  # set-up


def readme_commands() -> list[list[str]]:
    """The argument lists of every `denoise` command in the README's bash blocks, in order."""
    commands = []
    for skipped, body in BLOCK.findall((REPO / "README.md").read_text(encoding="utf-8")):
        if skipped:
            continue
        for line in body.replace("\\\n", " ").splitlines():
            for part in line.split("&&"):
                words = shlex.split(part, comments=True)
                if not words:
                    continue
                assert not {">", "|", "<"} & set(words) and "$" not in part, f"shell syntax in README: {part}"
                if words[0] == "denoise":
                    commands.append(words[1:])
                else:
                    assert tuple(words[:2]) in NOT_DENOISE, f"a README command the test cannot run: {part}"
    return commands


def shortened(args: list[str]) -> list[str]:
    args = list(args)
    for option, shorten in (("--epochs", lambda n: max(1, n // 10)), ("--steps-per-epoch", lambda n: min(n, 2))):
        if option in args:
            index = args.index(option) + 1
            args[index] = str(shorten(int(args[index])))
    return args


def noisy_folder(folder: Path, count: int, size, noise: str, channels: int = 1, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        clean = smooth_image(*size, channels, seed=seed + index).astype(np.float32) / 255
        noisy = np.round(add_noise(clean, parse_noise(noise), rng) * 255).astype(np.uint8)
        Image.fromarray(noisy[..., 0] if channels == 1 else noisy).save(folder / f"photo{index}.png")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """The files a reader of the README would have: their photos, scans, clean images and a model of their own."""
    from factories import tiny_unet

    from denoise.nn.saving import save_model

    root = tmp_path_factory.mktemp("readme")
    shutil.copytree(REPO / "samples", root / "samples", ignore=shutil.ignore_patterns("*-denoised"))
    noisy_folder(root / "photos", 2, (48, 64), "gaussian:20", channels=3)
    noisy_folder(root / "photos" / "2024", 1, (40, 40), "gaussian:10")
    noisy_folder(root / "scans", 2, (48, 48), "salt-and-pepper:0.1")
    Image.open(root / "photos" / "photo0.png").save(root / "scan.tif")
    write_image_folder(root / "clean", 2, size=(40, 40))
    write_image_folder(root / "my_clean_images", 4, size=(136, 136))
    write_image_folder(root / "val", 2, size=(64, 64))
    noisy_folder(root / "camera_photos", 4, (192, 192), "gaussian:15", channels=3)
    write_image_folder(root / "twins" / "clean", 1, size=(64, 64), channels=3)  # a clean image and its noisy twin
    noisy = np.asarray(Image.open(root / "twins" / "clean" / "image000.png"), np.float32) / 255
    noisy = add_noise(noisy, parse_noise("gaussian:15"), np.random.default_rng(0))
    (root / "twins" / "noisy").mkdir()
    Image.fromarray(np.round(noisy * 255).astype(np.uint8)).save(root / "twins" / "noisy" / "image000.png")
    save_model(tiny_unet(1), root / "my-model.keras", {"architecture": "unet", "channels": 1,
                                                       "noise": "gaussian:0-50"})
    return root


@pytest.mark.slow
@pytest.mark.xdist_group("readme")  # the commands build on each other's files: one worker runs them in order
@pytest.mark.parametrize("args", readme_commands(), ids=lambda args: " ".join(args)[:70])
def test_readme_command_works_as_written(workspace, monkeypatch, args):
    monkeypatch.chdir(workspace)
    keras_home = workspace / "keras-home"
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    if not keras_home.exists():
        mnist_cache(keras_home)
    result = CliRunner().invoke(app, shortened(args))
    assert result.exit_code == 0, f"denoise {' '.join(args)}\n{result.output}"


def test_the_readme_runs_every_kind_of_command():
    """A guard against a README edit that hides its blocks from this test (a wrong fence, a stray skip marker)."""
    commands = {args[0] for args in readme_commands()}
    assert commands >= {"run", "noise", "train", "eval", "datasets", "info", "compact"}


def test_ci_runs_exactly_the_readmes_test_command():
    lines = (REPO / ".ci" / "run").read_text().splitlines()
    ci = [line for line in lines if line and not line.startswith(("#", "set ", "cd "))]
    assert len(ci) == 1 and f"```bash\n{ci[0]}\n```" in (REPO / "README.md").read_text(encoding="utf-8")

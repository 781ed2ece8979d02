"""Every Python block of docs/api.md runs as written, in order, in one namespace, as a notebook would run them; so
does the README's.

MNIST is a small MNIST-format file in the Keras cache (no network), the shipped samples are copied beside it (and
one as the README's photo.jpg), and matplotlib is hidden, so the example takes its path for a machine without it.
"""

import re
import shutil
import sys
from pathlib import Path

import pytest
from factories import mnist_cache

REPO = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def api_blocks(document: str = "docs/api.md") -> list[str]:
    return BLOCK.findall((REPO / document).read_text(encoding="utf-8"))


def test_the_api_docs_hold_the_notebook_example():
    blocks = api_blocks()
    assert len(blocks) >= 3
    example = next(block for block in blocks if "denoise.train(" in block)
    for step in ("denoise.load_dataset(\"mnist\"", "denoise.add_noise(", "denoise.load_model(", "clean_many(",
                 "denoise.evaluate(", "matplotlib"):
        assert step in example, step


@pytest.mark.slow
def test_every_python_block_of_the_api_docs_runs(tmp_path, monkeypatch):
    keras_home = tmp_path / "keras-home"
    mnist_cache(keras_home)
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    shutil.copytree(REPO / "samples", tmp_path / "samples", ignore=shutil.ignore_patterns("*-denoised"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    namespace: dict = {}
    for block in api_blocks():
        exec(compile(block, "docs/api.md", "exec"), namespace)  # noqa: S102 - the docs' own example
    assert (tmp_path / "digits.keras").is_file() and (tmp_path / "astronaut-clean.png").is_file()
    report = namespace["report"].summary()
    assert report["count"] == 4 and report["denoised_psnr"] > report["noisy_psnr"]


def test_the_readmes_python_block_runs(tmp_path, monkeypatch):
    (block,) = api_blocks("README.md")
    shutil.copy(REPO / "samples" / "noisy-camera" / "coffee.jpg", tmp_path / "photo.jpg")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 - the README's own example
    assert namespace["noisy"].size == namespace["cleaned"].size == (384, 256)

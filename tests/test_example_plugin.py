"""The example plugin package examples/denoise-stripes, installed for real with pip into a temporary folder.

The fake dist-info folders of test_datasets.py prove discovery; this proves that the pyproject.toml a plugin author
copies from docs/plugins.md really registers a loader that the CLI lists and trains on. It is the slow test here
(a pip build, then TensorFlow start-up in a subprocess).
"""

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "denoise-stripes"


def build_tools_missing() -> str | None:
    """Why the example cannot be built offline here, or None when it can."""
    if subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True).returncode != 0:
        return "pip is not available to this Python"
    if importlib.util.find_spec("setuptools") is None:
        return "setuptools is not installed (needed because the install runs with --no-build-isolation)"
    import setuptools

    # Before 70.1, setuptools needed the separate `wheel` package to build wheels.
    if tuple(int(part) for part in setuptools.__version__.split(".")[:2]) < (70, 1):
        if importlib.util.find_spec("wheel") is None:
            return f"setuptools {setuptools.__version__} needs the `wheel` package to build, and it is missing"
    return None


pytestmark = pytest.mark.xdist_group("example-plugin")  # one worker installs the plugin once for all its tests


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """A folder holding denoise-stripes installed by pip, as a third-party user would install it."""
    reason = build_tools_missing()
    if reason:
        pytest.skip(f"cannot install the example plugin: {reason}")
    source = tmp_path_factory.mktemp("src") / "denoise-stripes"
    shutil.copytree(EXAMPLE, source)  # build in a copy, so no build/ or *.egg-info lands in the repository
    target = tmp_path_factory.mktemp("site")
    command = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--target", str(target)]
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}  # never the network
    done = subprocess.run([*command, str(source)], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, f"pip could not install the example plugin:\n{done.stdout}\n{done.stderr}"
    return target


def run_python(site: Path, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    """Run python with the installed plugin and this repository importable, as a user's environment would be."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)]), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, timeout=timeout)


def test_installed_plugin_is_discovered_with_its_package(site):
    code = "from denoise.datasets import get_plugin; p = get_plugin('stripes'); print(p.package, p.version, p.builtin)"
    done = run_python(site, "-c", code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["denoise-stripes", "0.1.0", "False"]


def test_cli_lists_the_installed_plugin(site):
    done = run_python(site, "-m", "denoise", "datasets")
    assert done.returncode == 0, done.stdout + done.stderr
    (line,) = [line for line in done.stdout.splitlines() if line.startswith("stripes ")]
    assert line.split()[1:4] == ["denoise-stripes", "0.1.0", "ok"]


# Written against the `denoise train` options of denoise/cli/train.py: --dataset, --arch, --epochs, --batch-size,
# --patch-size, --noise and --out. If those are renamed, update this command (and docs/plugins.md).
@pytest.mark.slow
def test_cli_trains_on_the_installed_plugin(site, tmp_path):
    out = tmp_path / "m.keras"
    args = ["--dataset", "stripes", "--arch", "conv", "--epochs", "1", "--batch-size", "8", "--patch-size", "16"]
    done = run_python(site, "-m", "denoise", "train", *args, "--noise", "gaussian:25", "--out", str(out), timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert out.is_file() and out.stat().st_size > 0

"""Discovery of dataset loaders, with fake `*.dist-info` folders on sys.path instead of installed packages."""

import itertools
import textwrap

import numpy as np
import pytest

from denoise import datasets
from denoise.datasets import Dataset, LoadRequest
from denoise.errors import DatasetError, PluginError

BUILTINS = {"fashion-mnist", "folder", "mnist"}
_module_numbers = itertools.count()


@pytest.fixture
def add_dist(tmp_path, monkeypatch):
    """Make a fake installed distribution: METADATA, entry_points.txt and its module, all on sys.path."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def add(package: str, loaders: dict[str, str], version: str = "1.0") -> str:
        module = f"fake_denoise_plugin_{next(_module_numbers)}"  # unique, so no test sees another's cached module
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(loaders.pop("__module__", "")))
        info = tmp_path / f"{package.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n")
        lines = [f"{name} = {module}:{function}" for name, function in loaders.items()]
        (info / "entry_points.txt").write_text("[console_scripts]\nx = y:z\n\n[denoise.datasets]\n" + "\n".join(lines))
        return module

    return add


GOOD_MODULE = '''
    import numpy as np
    from denoise.datasets import Dataset

    def load_zeros(request):
        """Zeros, for tests.

        More text that `denoise datasets` does not show.
        """
        return Dataset(train=[np.zeros((8, 8, 1), np.uint8)] * 2, validation=[np.zeros((9, 7, 3), np.uint8)])

    def load_ones(request):
        return Dataset(train=np.ones((3, 4, 4, 1), np.uint8), validation=[], notes={"seed": request.seed})
'''


@pytest.fixture
def builtin_names():
    names = {plugin.name for plugin in datasets.find_plugins() if plugin.builtin}
    assert names >= BUILTINS, "the built-in loaders come from denoise's own dist-info: run `pip install -e .` first"
    return names


def test_found_plugins_are_sorted_with_package_version_and_builtin_flag(add_dist, builtin_names):
    add_dist("denoise-zeros", {"__module__": GOOD_MODULE, "zeta": "load_zeros", "alpha": "load_ones"}, "2.5")
    plugins = datasets.find_plugins()
    names = [plugin.name for plugin in plugins]
    assert names == sorted(names) and {"alpha", "zeta"} | BUILTINS <= set(names)
    alpha = datasets.get_plugin("alpha")
    assert (alpha.package, alpha.version, alpha.builtin) == ("denoise-zeros", "2.5", False)
    assert datasets.get_plugin("mnist").builtin and datasets.get_plugin("mnist").package == "denoise"
    assert datasets.get_plugin("zeta").describe() == "Zeros, for tests."


def test_loading_a_plugin_runs_it_with_the_request(add_dist):
    add_dist("denoise-zeros", {"__module__": GOOD_MODULE, "ones": "load_ones"})
    dataset = datasets.load_dataset("ones", LoadRequest(seed=7))
    assert dataset.train.shape == (3, 4, 4, 1) and dataset.notes == {"seed": 7}


def test_a_plugin_failing_at_import_is_named_and_the_others_still_load(add_dist, builtin_names):
    add_dist("denoise-broken", {"__module__": "raise ImportError('needs libfoo')", "broken": "load"}, "0.3")
    add_dist("denoise-zeros", {"__module__": GOOD_MODULE, "zeros": "load_zeros"})
    assert {"broken", "zeros"} <= {plugin.name for plugin in datasets.find_plugins()}  # finding imports nothing
    with pytest.raises(PluginError, match=r"'broken' from package denoise-broken 0.3 failed to import.*needs libfoo"):
        datasets.load_dataset("broken", LoadRequest())
    assert len(datasets.load_dataset("zeros", LoadRequest()).train) == 2
    assert datasets.get_plugin("mnist").load_loader().__name__ == "load_mnist"


def test_a_missing_function_is_reported_like_an_import_failure(add_dist):
    add_dist("denoise-typo", {"__module__": GOOD_MODULE, "typo": "load_zeroes"})
    with pytest.raises(PluginError, match=r"'typo' from package denoise-typo .*failed to import.*AttributeError"):
        datasets.get_plugin("typo").load_loader()


def test_an_unknown_name_lists_the_available_ones(add_dist, builtin_names):
    add_dist("denoise-zeros", {"__module__": GOOD_MODULE, "zeros": "load_zeros"})
    with pytest.raises(DatasetError, match=r"no dataset named 'mnsit'\. Available: fashion-mnist, folder, .*zeros"):
        datasets.get_plugin("mnsit")


BROKEN_MODULE = '''
    import numpy as np
    from denoise.datasets import Dataset

    def image(shape=(8, 8, 1), dtype=np.uint8):
        return np.zeros(shape, dtype)

    def wrong_dtype(request):
        return Dataset(train=[image(dtype=np.float32)], validation=[])

    def wrong_ndim(request):
        return Dataset(train=[image(shape=(8, 8))], validation=[])

    def wrong_channels(request):
        return Dataset(train=[], validation=[image(shape=(8, 8, 4))])

    def empty(request):
        return Dataset(train=[], validation=[])

    def not_a_dataset(request):
        return {"train": [image()]}

    def shapes_differ(request):
        return Dataset(train=[image(), image(shape=(9, 8, 1))], validation=[])

    def crashes(request):
        return 1 / 0
'''


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("wrong-dtype", r"train image 0 is float32; loaders must return uint8"),
        ("wrong-ndim", r"train image 0 has shape \(8, 8\); loaders must return HxWxC"),
        ("wrong-channels", r"validation image 0 has shape \(8, 8, 4\)"),
        ("empty", r"returned no images"),
        ("not-a-dataset", r"returned dict, not denoise.datasets.Dataset"),
        ("shapes-differ", r"train images must share one shape"),
        ("crashes", r"failed while loading: ZeroDivisionError"),
    ],
)
def test_contract_violations_name_the_plugin(add_dist, name, message):
    add_dist("denoise-bad", {"__module__": BROKEN_MODULE, name: name.replace("-", "_")})
    with pytest.raises(PluginError, match=rf"The dataset plugin '{name}' from package denoise-bad.*{message}"):
        datasets.load_dataset(name, LoadRequest())


def test_a_third_party_plugin_cannot_take_a_builtin_name(add_dist, builtin_names):
    add_dist("aaa-first-by-name", {"__module__": GOOD_MODULE, "mnist": "load_zeros"})
    plugin = datasets.get_plugin("mnist")
    assert (plugin.package, plugin.builtin) == ("denoise", True)


def test_disable_plugins_hides_third_party_but_keeps_builtins(add_dist, builtin_names, monkeypatch):
    add_dist("denoise-zeros", {"__module__": GOOD_MODULE, "zeros": "load_zeros"})
    monkeypatch.setenv(datasets.DISABLE_PLUGINS_ENV, "1")
    names = {plugin.name for plugin in datasets.find_plugins()}
    assert "zeros" not in names and BUILTINS <= names
    with pytest.raises(DatasetError, match="no dataset named 'zeros'"):
        datasets.get_plugin("zeros")
    monkeypatch.setenv(datasets.DISABLE_PLUGINS_ENV, "0")
    assert "zeros" in {plugin.name for plugin in datasets.find_plugins()}


def test_builtin_loaders_keep_the_contract_through_load_dataset(tmp_path):
    from PIL import Image

    Image.fromarray(np.full((20, 20), 128, np.uint8)).save(tmp_path / "grey.png")
    dataset = datasets.load_dataset("folder", LoadRequest(path=tmp_path, validation_fraction=1.0))
    assert isinstance(dataset, Dataset) and dataset.validation[0].shape == (20, 20, 1)


def test_the_cli_lists_a_broken_plugin_by_package_and_still_trains_with_the_others(add_dist, builtin_names, tmp_path):
    from typer.testing import CliRunner

    from denoise.cli import app

    add_dist("denoise-broken", {"__module__": "raise ImportError('needs libfoo')", "broken": "load"}, "0.3")
    add_dist("denoise-zeros", {"__module__": GOOD_MODULE, "zeros": "load_zeros"})
    runner = CliRunner()
    listing = runner.invoke(app, ["datasets"])
    assert listing.exit_code == 1  # something is broken, and the exit code says so
    lines = {line.split()[0]: line for line in listing.output.splitlines()[1:] if line.strip()}
    assert "BROKEN" in lines["broken"] and "denoise-broken" in lines["broken"] and "needs libfoo" in lines["broken"]
    assert "ok" in lines["zeros"] and all("ok" in lines[name] for name in BUILTINS)
    training = runner.invoke(app, ["train", "--dataset", "broken", "--out", str(tmp_path / "m.keras")])
    assert training.exit_code == 2 and "denoise-broken" in training.output and "Traceback" not in training.output

"""The dataset loader contract and the discovery of loaders through the entry-point group `denoise.datasets`.

A loader is a function `load(request: LoadRequest) -> Dataset`, registered by any installed package:

    [project.entry-points."denoise.datasets"]
    my-data = "my_package.loader:load_my_data"

The first line of its docstring is the description `denoise datasets` shows. Discovery first finds entry points
(cheap, no imports), then imports only the loader that is asked for, so one broken plugin never stops the others.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from denoise.errors import DatasetError, PluginError

GROUP = "denoise.datasets"
BUILTIN_DISTRIBUTION = "denoise"
# Set to 1 to ignore loaders from other packages (the built-in ones still work), like PYTEST_DISABLE_PLUGIN_AUTOLOAD.
DISABLE_PLUGINS_ENV = "DENOISE_DISABLE_PLUGINS"


@dataclass(frozen=True)
class LoadRequest:
    """What the caller wants from a loader."""

    path: Path | None = None  # --path: where the data lies (a loader may have its own default)
    patch_size: int | None = None  # cut training images into square patches of this size; None = whole images
    validation_fraction: float = 0.1  # share held out for validation; 1.0 = everything is for evaluation
    channels: int | None = None  # 1 (grayscale) or 3 (colour); None = as stored
    seed: int = 0  # for every random choice the loader makes (split, patch positions)
    limit: int | None = None  # read at most this many source images (quick runs, tests)


@dataclass
class Dataset:
    """Clean images as HxWxC uint8 arrays (C = 1 or 3).

    `train` images must all share one shape (patches, or MNIST's 28x28) so they can be batched;
    `validation` images may differ in size.
    """

    train: Sequence[np.ndarray]
    validation: Sequence[np.ndarray]
    notes: dict = field(default_factory=dict)  # free-form facts for the model card, e.g. {"source": "..."}
    validation_names: Sequence[str] = ()  # optional: a name for each validation image (a relative path), for reports


Loader = Callable[[LoadRequest], Dataset]


@dataclass(frozen=True)
class DatasetPlugin:
    """One registered loader: its name, the distribution that registered it, and how to import it."""

    name: str
    package: str
    version: str
    entry_point: metadata.EntryPoint

    @property
    def builtin(self) -> bool:
        return self.package == BUILTIN_DISTRIBUTION

    def load_loader(self) -> Loader:
        """Import the loader; any failure becomes a PluginError naming the plugin and its package."""
        try:
            loader = self.entry_point.load()
        except Exception as exc:  # a plugin may fail in any way at import; report it, never crash the others
            raise PluginError(
                f"The dataset plugin {self.name!r} from package {self.package} {self.version} failed to import: "
                f"{type(exc).__name__}: {exc}. Reinstall or upgrade that package, or uninstall it."
            ) from exc
        if not callable(loader):
            raise PluginError(f"The dataset plugin {self.name!r} from package {self.package} is not callable.")
        return loader

    def describe(self) -> str:
        """The first docstring line of the loader (imports it)."""
        doc = (self.load_loader().__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""


def find_plugins() -> list[DatasetPlugin]:
    """All registered loaders, sorted by name; other packages' loaders are left out when DISABLE_PLUGINS_ENV is set."""
    plugins_off = os.environ.get(DISABLE_PLUGINS_ENV, "").strip() not in ("", "0")
    found: dict[str, DatasetPlugin] = {}
    for dist in metadata.distributions():
        package = dist.metadata["Name"] or "unknown"
        for entry_point in dist.entry_points:
            if entry_point.group != GROUP:
                continue
            plugin = DatasetPlugin(entry_point.name, package, dist.version, entry_point)
            if plugins_off and not plugin.builtin:
                continue
            # A name registered twice keeps the built-in (or the first by package name), deterministically.
            known = found.get(plugin.name)
            if known is None or (plugin.builtin, known.package) > (known.builtin, plugin.package):
                found[plugin.name] = plugin
    return [found[name] for name in sorted(found)]


def get_plugin(name: str) -> DatasetPlugin:
    """The loader registered under `name`; an unknown name gets an error listing the available ones."""
    plugins = find_plugins()
    for plugin in plugins:
        if plugin.name == name:
            return plugin
    available = ", ".join(p.name for p in plugins) or "none"
    raise DatasetError(f"There is no dataset named {name!r}. Available: {available}. See `denoise datasets`.")


def load_dataset(name: str, request: LoadRequest) -> Dataset:
    """Find, import and run the loader `name`, then check what it returned."""
    plugin = get_plugin(name)
    loader = plugin.load_loader()
    try:
        dataset = loader(request)
    except DatasetError:
        raise
    except Exception as exc:
        raise PluginError(
            f"The dataset plugin {plugin.name!r} from package {plugin.package} failed while loading: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    return check_dataset(dataset, plugin)


def check_dataset(dataset: object, plugin: DatasetPlugin) -> Dataset:
    """Make sure a loader kept the contract, so a broken plugin is named instead of failing deep inside training."""
    where = f"The dataset plugin {plugin.name!r} from package {plugin.package}"
    if not isinstance(dataset, Dataset):
        raise PluginError(f"{where} returned {type(dataset).__name__}, not denoise.datasets.Dataset.")
    if len(dataset.train) == 0 and len(dataset.validation) == 0:
        raise PluginError(f"{where} returned no images. Check the path it reads from.")
    for split in ("train", "validation"):
        for index, image in enumerate(getattr(dataset, split)):
            _check_image(image, f"{where}: {split} image {index}")
    shapes = {np.shape(image) for image in dataset.train}
    if len(shapes) > 1:
        raise PluginError(f"{where}: train images must share one shape, got {sorted(shapes)[:3]}...")
    return dataset


def _check_image(image: object, where: str) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        dtype = getattr(image, "dtype", type(image).__name__)
        raise PluginError(f"{where} is {dtype}; loaders must return uint8 arrays.")
    if image.ndim != 3 or image.shape[-1] not in (1, 3) or min(image.shape[:2]) < 1:
        raise PluginError(f"{where} has shape {image.shape}; loaders must return HxWxC arrays with C = 1 or 3.")

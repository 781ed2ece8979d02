"""denoise: clean folders of noisy images, train denoising autoencoders. Importing it never imports TensorFlow.

The Python API (api.py; docs/api.md) is reached from here: denoise.clean(image), denoise.load_model(name_or_path),
denoise.add_noise, denoise.evaluate, denoise.load_dataset and denoise.train. Each is imported on first use, so
`import denoise` (and `denoise --help`) stays free of NumPy and TensorFlow.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

try:
    __version__ = version("denoise")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

if TYPE_CHECKING:
    from denoise.api import Model, add_noise, clean, evaluate, load_dataset, load_model, train

__all__ = ["Model", "__version__", "add_noise", "clean", "evaluate", "load_dataset", "load_model", "train"]
_API = frozenset(__all__) - {"__version__"}


def __getattr__(name: str):
    if name in _API:
        from denoise import api

        return getattr(api, name)
    raise AttributeError(f"module 'denoise' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])

"""denoise: clean folders of noisy images, train denoising autoencoders. Importing it never imports TensorFlow."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("denoise")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]

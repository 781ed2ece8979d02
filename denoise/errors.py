"""Error types of denoise. Each message says what failed and what to do next; only the CLI turns them into output."""


class DenoiseError(Exception):
    """Base of every error denoise raises on purpose; the CLI shows its message without a traceback."""


class UsageError(DenoiseError):
    """The user asked for something that cannot work (bad option value, conflicting flags)."""


class NoiseSpecError(UsageError):
    """A noise description such as 'gaussian:25' could not be parsed."""


class ImageError(DenoiseError):
    """An image file could not be read, understood or written."""


class ModelError(DenoiseError):
    """A model file is missing, corrupt, unsafe or does not fit the data."""


class DatasetError(DenoiseError):
    """A dataset could not be found, loaded, or gave data of the wrong form."""


class PluginError(DatasetError):
    """A dataset plugin failed to import or broke the loader contract; the message names plugin and package."""


class TrainingError(DenoiseError):
    """Training could not go on (for example the loss became NaN)."""

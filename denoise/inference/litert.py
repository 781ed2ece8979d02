"""A Keras model run by LiteRT: TensorFlow Lite's interpreter with its XNNPACK CPU kernels.

In float32 on CPUs without native bfloat16 (no AMX), `denoise run` with it cleaned 12 MP photos as fast end to end
as with TensorFlow's own kernels (camera model; 1.1x with the Gaussian one) on 2 AVX2 cores, with outputs within
2e-6 of them, in 512-pixel tiles that keep its peak memory about 300 MB below TensorFlow's (`python
benchmarks/throughput.py --runtime tensorflow,litert`, docs/performance.md).

The interpreter ships inside TensorFlow (`tf.lite`); its successor, the `ai-edge-litert` package, is used instead
where it is installed. The model is converted when it is first loaded (a few seconds for the shipped models), with
a batch, height and width left free, so one converted model takes tiles and whole images of any size. The result is
kept in a cache folder (cache_folder()), keyed by the model's architecture, weights and TensorFlow's version, so
later runs load it at once.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import warnings
from pathlib import Path

import numpy as np

from denoise.runtime import quiet_stderr

FORMAT = "1"  # part of every cache key: raise it when convert() changes what it makes


class LiteModel:
    """A Keras model converted to TensorFlow Lite: float32 NHWC batches in, the model's output out.

    Calls from several threads are safe: one interpreter runs one batch at a time, under a lock.
    """

    def __init__(self, model, threads: int, example_shape: tuple[int, ...]):
        """example_shape: one image's HxWxC the model takes, run once here so that the XNNPACK delegate, which
        announces itself on stderr, starts while stderr is quiet."""
        self._shape: tuple | None = None
        self._lock = threading.Lock()
        with quiet_stderr():  # the converter and the XNNPACK delegate log to stderr from C++
            self._interpreter = _load(model, threads)
            self._input = self._interpreter.get_input_details()[0]["index"]
            self._output = self._interpreter.get_output_details()[0]["index"]
            self(np.zeros((1, *example_shape), np.float32))

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """The model's output for an NHWC batch, run one image at a time: a batch of n images would need buffers n
        times as large, and every new batch size (the last, smaller batch of a run) would re-plan them."""
        batch = np.asarray(batch, dtype=np.float32)
        with self._lock:
            return np.concatenate([self._run(batch[index : index + 1]) for index in range(len(batch))])

    def _run(self, image: np.ndarray) -> np.ndarray:
        if image.shape != self._shape:  # a new size re-plans the buffers, once per size in a row
            self._interpreter.resize_tensor_input(self._input, image.shape, strict=False)
            self._interpreter.allocate_tensors()
            self._shape = image.shape
        self._interpreter.set_tensor(self._input, np.ascontiguousarray(image))
        self._interpreter.invoke()
        return self._interpreter.get_tensor(self._output)  # a copy: the interpreter's buffers are reused


def convert(model) -> bytes:
    """The model as a TensorFlow Lite flatbuffer, its weights frozen in, every input dimension but the channels free."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    spec = tf.TensorSpec([None, *model.inputs[0].shape[1:]], tf.float32)
    function = tf.function(lambda batch: model(batch, training=False)).get_concrete_function(spec)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([convert_variables_to_constants_v2(function)])
    return converter.convert()


def cache_folder() -> Path:
    """Where converted models are kept: $DENOISE_CACHE, else $XDG_CACHE_HOME/denoise, else ~/.cache/denoise."""
    if os.environ.get("DENOISE_CACHE"):
        return Path(os.environ["DENOISE_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "denoise"


def fingerprint(model) -> str:
    """A key that changes with the model's architecture, any weight, TensorFlow's version and FORMAT."""
    import tensorflow as tf

    digest = hashlib.sha256(f"{FORMAT} {tf.__version__} {model.to_json()}".encode())
    for weight in model.weights:
        digest.update(np.ascontiguousarray(weight.numpy()).tobytes())
    return digest.hexdigest()[:32]


def _load(model, threads: int):
    """An interpreter for the model: from the cache if a good copy is there, else converted now and cached."""
    path = cache_folder() / "litert" / f"{fingerprint(model)}.tflite"
    try:
        return _interpreter(path.read_bytes(), threads)
    except (OSError, ValueError, RuntimeError):  # not cached yet, or a truncated or foreign file: convert again
        pass
    flatbuffer = convert(model)
    _write_atomically(path, flatbuffer)
    return _interpreter(flatbuffer, threads)


def _write_atomically(path: Path, data: bytes) -> None:
    """Write through a temporary file and a rename, so no reader sees half a file; a read-only cache is skipped."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".part")
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except OSError:
        return  # the model still runs; it is converted again next time


def _interpreter(flatbuffer: bytes, threads: int):
    try:
        from ai_edge_litert.interpreter import Interpreter as interpreter_class
    except ImportError:
        import tensorflow as tf

        interpreter_class = tf.lite.Interpreter
    with warnings.catch_warnings():  # tf.lite.Interpreter warns that it moves to ai-edge-litert
        warnings.simplefilter("ignore")
        return interpreter_class(model_content=flatbuffer, num_threads=threads)

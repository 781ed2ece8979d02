"""Cores, memory and TensorFlow's start-up for the commands that run a model.

Nothing here imports TensorFlow at module level, so the CLI can check --threads and --max-memory before paying
for TensorFlow's import.
"""

from __future__ import annotations

import os
import re
import sys
from contextlib import contextmanager
from dataclasses import dataclass

from denoise.errors import UsageError

# Measured with the default U-Net (width 32, depth 3) on CPU: TensorFlow and the model take about 0.65 GB of RSS
# before any image, and a model call about 100 bytes per pixel of batch (activations, tiles, outputs).
RUNTIME_BYTES = 700 * 2**20
ACTIVATION_BYTES_PER_PIXEL = 100
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


@dataclass(frozen=True)
class MemoryPlan:
    """How a memory target is shared: pixels buffered between the pipeline's stages, pixels per model call."""

    buffer_bytes: int
    batch_pixels: int


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask, which batch schedulers set), not the machine's total."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def parse_size(text: str) -> int:
    """'2G', '512M', '1.5G' or a plain number of bytes, in bytes (K, M, G, T are powers of 1024)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", text, re.IGNORECASE)
    if not match:
        raise UsageError(f"{text!r} is not a size. Write it like 2G, 1.5G or 800M.")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def memory_plan(limit: int) -> MemoryPlan:
    """Share a peak-memory target between read-ahead/write-behind buffers and the model's batches."""
    room = limit - RUNTIME_BYTES
    if room < 256 * 2**20:
        raise UsageError(f"A memory target of {limit / 2**30:.2f} GiB leaves no room beside TensorFlow and the model "
                         f"(about {RUNTIME_BYTES / 2**30:.1f} GiB). Give at least 1G.")
    # An eighth for the model's activations: TensorFlow's allocator keeps what a call used, so this is held for good.
    return MemoryPlan(buffer_bytes=room // 2, batch_pixels=max(2**16, room // 8 // ACTIVATION_BYTES_PER_PIXEL))


PRECISIONS = ("auto", "float32", "bfloat16")


def parse_precision(text: str) -> str:
    return _one_of(text, PRECISIONS, "precision")


def _one_of(text: str, choices: tuple[str, ...], what: str) -> str:
    if text not in choices:
        raise UsageError(f"Unknown {what} {text!r}. Choose one of: {', '.join(choices)}.")
    return text


def resolve_precision(precision: str) -> str:
    """'auto' becomes bfloat16 on CPUs that compute it natively (AMX or AVX-512 BF16) without a GPU, else float32.

    On such CPUs the default U-Net runs about 3x faster in bfloat16 and Set12 PSNR moves by 0.01-0.02 dB
    (docs/model-search.md); elsewhere bfloat16 would be emulated, slower than float32.
    """
    if parse_precision(precision) != "auto":
        return precision
    import tensorflow as tf

    native = bool(_cpu_flags() & {"amx_bf16", "avx512_bf16"}) and not _onednn_below_bfloat16()
    return "bfloat16" if native and not tf.config.list_physical_devices("GPU") else "float32"


def _onednn_below_bfloat16() -> bool:
    """Whether ONEDNN_MAX_CPU_ISA keeps TensorFlow's kernels below the instructions that compute bfloat16 natively
    (as `ONEDNN_MAX_CPU_ISA=AVX2` does, to run as on a CPU without AVX-512 or AMX)."""
    limit = os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip().upper()
    return limit in {"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI"}


RUNTIMES = ("auto", "tensorflow", "litert")


def parse_runtime(text: str) -> str:
    return _one_of(text, RUNTIMES, "runtime")


def resolve_engine(precision: str, runtime: str) -> tuple[str, str]:
    """The arithmetic and the runtime a model runs with: ("float32" or "bfloat16", "tensorflow" or "litert").

    'auto' runtime: LiteRT (TensorFlow Lite's interpreter with its XNNPACK kernels) wherever the model computes in
    float32 on a CPU, where `denoise run` went as fast as with TensorFlow (camera model) or 1.1x (Gaussian model),
    with the same output and less memory (docs/performance.md); TensorFlow for bfloat16 (AMX) and on GPUs. LiteRT
    computes in float32 only.
    """
    parse_runtime(runtime)
    if runtime == "litert":
        if precision == "bfloat16":
            raise UsageError("--runtime litert computes in float32: use --precision float32 or auto with it.")
        return "float32", runtime
    precision = resolve_precision(precision)
    if runtime == "auto":
        import tensorflow as tf

        runtime = "litert" if precision == "float32" and not tf.config.list_physical_devices("GPU") else "tensorflow"
    return precision, runtime


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def start_tensorflow(threads: int | None = None) -> int:
    """Import TensorFlow quietly and size its thread pools (all usable cores unless threads); returns the count.

    TF_CPP_MIN_LOG_LEVEL no longer silences the lines absl prints before its logging starts, so the process's
    stderr is pointed at /dev/null while TensorFlow loads and probes devices; Python errors still surface. After
    that TensorFlow's own Python warnings (the tf.function "retracing" one on folders of mixed sizes, say) are
    silenced too: denoise says what matters itself. DENOISE_DEBUG=1, or TF_CPP_MIN_LOG_LEVEL=0 or 1 set by the
    user, lets them all through.
    """
    threads = threads or usable_cores()
    verbose = tensorflow_verbose()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if verbose else "2")
    fresh = "tensorflow" not in sys.modules
    with quiet_stderr():
        import tensorflow as tf

        _set_threads(tf, threads)
        if fresh:
            tf.config.list_physical_devices("GPU")
    if not verbose:
        _quiet_python_loggers(tf)
    return threads


@contextmanager
def quiet_stderr():
    """Points the process's stderr (file descriptor 2, where TensorFlow's C++ code logs) at /dev/null for the
    block, unless tensorflow_verbose(); Python exceptions still propagate."""
    if tensorflow_verbose():
        yield
        return
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def tensorflow_verbose() -> bool:
    """Whether TensorFlow's own messages are wanted: DENOISE_DEBUG=1, or TF_CPP_MIN_LOG_LEVEL set to 0 or 1."""
    if os.environ.get("DENOISE_DEBUG", "").strip() not in ("", "0"):
        return True
    # A level the user lowered asks for TensorFlow's info or warnings; 2 and 3 (ours, or theirs) ask for quiet.
    return os.environ.get("TF_CPP_MIN_LOG_LEVEL", "").strip() in ("0", "1")


def _quiet_python_loggers(tf) -> None:
    # TensorFlow warns through its Python logger and through absl; both would print past -q.
    import logging

    tf.get_logger().setLevel(logging.ERROR)
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:
        pass


def describe_device(threads: int, precision: str, runtime: str = "tensorflow") -> str:
    """Where and how the model runs, in words: 'GPU (NVIDIA H200), float32' or 'CPU, 2 threads, bfloat16' or
    'CPU, 2 threads, float32, LiteRT (XNNPACK)'."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        engine = ", LiteRT (XNNPACK)" if runtime == "litert" else ""
        return f"CPU, {threads} thread{'s' if threads != 1 else ''}, {precision}{engine}"
    names = []
    for gpu in gpus:
        try:
            names.append(tf.config.experimental.get_device_details(gpu).get("device_name") or gpu.name)
        except (RuntimeError, ValueError):
            names.append(gpu.name)
    return f"GPU ({', '.join(names)}), {precision}"


def _set_threads(tf, threads: int) -> None:
    # Intra-op threads split one convolution (oneDNN uses this pool too); the model's ops mostly run one after
    # another, so two inter-op threads keep tf.data and the model busy without oversubscribing the cores.
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(min(threads, 2))
    except RuntimeError:
        pass  # TensorFlow already ran an op in this process (denoise used as a library, or in tests): keep its pools

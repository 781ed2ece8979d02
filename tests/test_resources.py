"""Sizes, memory targets and thread settings, without starting TensorFlow."""

import pytest

from denoise.errors import UsageError
from denoise.runtime import RUNTIME_BYTES, memory_plan, parse_size, usable_cores


@pytest.mark.parametrize("text, size", [("2G", 2 * 2**30), ("1.5g", 3 * 2**29), ("800M", 800 * 2**20),
                                        ("2GiB", 2 * 2**30), ("4096", 4096), (" 3 GB ", 3 * 2**30)])
def test_parse_size_reads_the_usual_spellings(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "lots", "2X", "-1G", "G"])
def test_parse_size_refuses_what_is_not_a_size(text):
    with pytest.raises(UsageError, match="not a size"):
        parse_size(text)


def test_memory_plan_keeps_buffers_and_batches_within_the_target():
    for limit in (1 * 2**30, 2 * 2**30, 16 * 2**30):
        plan = memory_plan(limit)
        assert RUNTIME_BYTES + plan.buffer_bytes + plan.batch_pixels * 100 <= limit
    with pytest.raises(UsageError, match="at least 1G"):
        memory_plan(500 * 2**20)


def test_usable_cores_is_at_least_one():
    assert usable_cores() >= 1


@pytest.mark.slow
def test_start_tensorflow_sizes_its_thread_pools_before_any_op_runs():
    import subprocess
    import sys

    code = ("from denoise.runtime import start_tensorflow\n"
            "assert start_tensorflow(1) == 1\n"
            "import tensorflow as tf\n"
            "tf.constant(1.0) + 1.0\n"
            "print(tf.config.threading.get_intra_op_parallelism_threads(),"
            " tf.config.threading.get_inter_op_parallelism_threads())\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["1", "1"]

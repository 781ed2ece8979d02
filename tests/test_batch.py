"""denoise.batch: planning output paths over real folder trees, and cleaning them with NumPy denoisers."""

import hashlib
import json
import os
import threading
import time

import numpy as np
import pytest
from PIL import Image

from denoise.batch import runner as batch
from denoise.batch.runner import (
    DONE,
    FAILED,
    SKIPPED,
    UNFINISHED,
    Interrupted,
    Job,
    clean_images,
    measure,
    parse_shard,
    plan_outputs,
    shard_jobs,
    takes_names,
)
from denoise.errors import UsageError
from denoise.io import images
from denoise.io.images import array_to_uint8, to_float

RNG = np.random.default_rng(3)


def mean_filter(batch):
    """A 3x3 box filter with edge padding: a real, simple denoiser."""
    outputs = []
    for image in batch:
        padded = np.pad(image, ((1, 1), (1, 1), (0, 0)), mode="edge")
        height, width = image.shape[:2]
        windows = [padded[dy : dy + height, dx : dx + width] for dy in range(3) for dx in range(3)]
        outputs.append(np.mean(windows, axis=0).astype(np.float32))
    return outputs


def identity(batch):
    return list(batch)


def _write(path, shape=(8, 10, 3)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(RNG.integers(0, 256, shape, dtype=np.uint8).squeeze()).save(path)
    return path


def _tree(root):
    """A small photo folder with nesting, spaces, non-ASCII names, a hidden file and a non-image."""
    _write(root / "a.png")
    _write(root / "B.JPG")
    _write(root / "trip 2019" / "café.png", (6, 6))
    _write(root / "trip 2019" / "deeper" / "日本.tif")
    _write(root / ".hidden.png")
    (root / "notes.txt").write_text("not an image")
    return root


def _hashes(root):
    return {path: hashlib.sha256(path.read_bytes()).hexdigest() for path in root.rglob("*") if path.is_file()}


def _relative(jobs, root):
    return [str(job.source.relative_to(root)) for job in jobs]


def test_plan_mirrors_the_tree_into_a_sibling_folder(tmp_path):
    root = _tree(tmp_path / "photos")
    jobs = plan_outputs(root)
    assert _relative(jobs, root) == ["B.JPG", "a.png", "trip 2019/café.png", "trip 2019/deeper/日本.tif"]
    for job in jobs:
        assert job.output == tmp_path / "photos-denoised" / job.source.relative_to(root)


def test_plan_refuses_the_input_folder_as_output(tmp_path):
    root = _tree(tmp_path / "photos")
    with pytest.raises(UsageError, match="is the input folder"):
        plan_outputs(root, out=root)
    with pytest.raises(UsageError):
        plan_outputs(root, out=tmp_path / "photos" / ".." / "photos")


def test_plan_leaves_an_output_folder_inside_the_input_out_of_the_walk(tmp_path):
    root = _tree(tmp_path / "photos")
    _write(root / "clean" / "old.png")
    jobs = plan_outputs(root, out=root / "clean")
    assert "clean/old.png" not in _relative(jobs, root)
    assert all(job.output.parent != job.source.parent for job in jobs)


def test_plan_refuses_outputs_that_land_on_inputs(tmp_path):
    _write(tmp_path / "photos" / "photos" / "a.png")
    _write(tmp_path / "photos" / "a.png")
    with pytest.raises(UsageError, match="overwrite the input"):
        plan_outputs(tmp_path / "photos", out=tmp_path)  # photos/photos/a.png would go to photos/a.png


def test_plan_for_a_single_file(tmp_path):
    source = _write(tmp_path / "scan.png")
    assert plan_outputs(source) == [Job(source, tmp_path / "scan-denoised.png")]
    assert plan_outputs(source, out=tmp_path / "clean") == [Job(source, tmp_path / "clean" / "scan.png")]
    assert plan_outputs(source, out=tmp_path / "x.png") == [Job(source, tmp_path / "x.png")]
    assert plan_outputs(source, in_place=True) == [Job(source, source)]
    with pytest.raises(UsageError, match="format"):
        plan_outputs(source, out=tmp_path / "x.jpg")


def test_plan_reports_a_symlink_loop_instead_of_hanging(tmp_path):
    root = _tree(tmp_path / "photos")
    os.symlink(root, root / "trip 2019" / "loop")
    jobs = plan_outputs(root)
    problems = [job for job in jobs if job.problem]
    assert [job.source.name for job in problems] == ["loop"]
    assert "loop" in problems[0].problem
    assert len(jobs) == 5


def test_plan_refuses_a_missing_source(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        plan_outputs(tmp_path / "nowhere")


def test_clean_writes_denoised_images_and_never_touches_inputs(tmp_path):
    root = _tree(tmp_path / "photos")
    before = _hashes(root)
    seen = []
    jobs = plan_outputs(root)
    summary = clean_images(jobs, mean_filter, progress=seen.append)
    assert summary.ok and summary.counts == {DONE: 4, SKIPPED: 0, FAILED: 0}
    assert sorted(result.source for result in seen) == sorted(job.source for job in jobs)
    assert [result.source for result in summary.results] == [job.source for job in jobs]
    source, output = root / "trip 2019" / "café.png", tmp_path / "photos-denoised" / "trip 2019" / "café.png"
    expected = array_to_uint8(mean_filter([to_float(np.asarray(Image.open(source)))])[0])[..., 0]  # grayscale
    np.testing.assert_array_equal(np.asarray(Image.open(output)), expected)
    assert Image.open(tmp_path / "photos-denoised" / "B.JPG").format == "JPEG"
    assert _hashes(root) == before


def test_one_bad_file_never_stops_the_others(tmp_path):
    root = _tree(tmp_path / "photos")
    (root / "empty.png").write_bytes(b"")
    (root / "text.jpg").write_text("hello")
    good = _write(root / "z" / "cut.png", (64, 64, 3))
    good.write_bytes(good.read_bytes()[:1500])
    before = _hashes(root)
    summary = clean_images(plan_outputs(root), identity)
    assert not summary.ok
    assert summary.counts == {DONE: 4, SKIPPED: 0, FAILED: 3}
    for result in summary.failures:
        assert result.source.name in result.reason
        assert not result.output.exists()
    assert _hashes(root) == before


def test_existing_outputs_are_skipped_unless_overwrite(tmp_path):
    root = _tree(tmp_path / "photos")
    jobs = plan_outputs(root)
    jobs[0].output.parent.mkdir(parents=True)
    jobs[0].output.write_bytes(b"keep me")
    summary = clean_images(jobs, identity)
    assert [r.status for r in summary.results] == [SKIPPED, DONE, DONE, DONE]
    assert jobs[0].output.read_bytes() == b"keep me"
    summary = clean_images(jobs, identity, overwrite=True)
    assert summary.counts[DONE] == 4
    assert Image.open(jobs[0].output).format == "JPEG"


def test_same_size_images_are_batched_and_sizes_never_mixed(tmp_path):
    for index in range(5):
        _write(tmp_path / "in" / f"{index}-big.png", (8, 10, 3))  # names interleave the two sizes
        _write(tmp_path / "in" / f"{index}-small.png", (4, 4, 3))
    calls = []

    def recording(batch):
        calls.append([image.shape for image in batch])
        return identity(batch)

    summary = clean_images(plan_outputs(tmp_path / "in"), recording, batch_size=2)
    assert summary.counts[DONE] == 10
    assert all(len(set(shapes)) == 1 and len(shapes) <= 2 for shapes in calls)
    assert sorted(len(shapes) for shapes in calls) == [1, 1, 2, 2, 2, 2]


def test_a_denoiser_failure_fails_only_that_image(tmp_path):
    for name in ("a.png", "b.png", "c.png"):
        _write(tmp_path / "in" / name)
    poisoned = to_float(np.asarray(Image.open(tmp_path / "in" / "b.png")))

    def fragile(batch):
        if any(np.array_equal(image, poisoned) for image in batch):
            raise MemoryError("out of memory")
        return identity(batch)

    summary = clean_images(plan_outputs(tmp_path / "in"), fragile, batch_size=3)
    assert [r.status for r in summary.results] == [DONE, FAILED, DONE]
    assert "b.png" in summary.results[1].reason and "MemoryError" in summary.results[1].reason


def test_a_denoiser_returning_wrong_shapes_fails_the_files(tmp_path):
    _write(tmp_path / "in" / "a.png")
    summary = clean_images(plan_outputs(tmp_path / "in"), lambda batch: [image[:2] for image in batch])
    assert summary.results[0].status == FAILED and "shapes" in summary.results[0].reason


def test_a_failed_write_fails_that_file_and_leaves_no_temp_file(tmp_path, monkeypatch):
    root = _tree(tmp_path / "photos")
    real_replace = os.replace

    def refuse_one(src, dst):
        if str(dst).endswith("a.png"):
            raise OSError(30, "Read-only file system")
        return real_replace(src, dst)

    monkeypatch.setattr(images.os, "replace", refuse_one)
    summary = clean_images(plan_outputs(root), identity)
    assert summary.counts == {DONE: 3, SKIPPED: 0, FAILED: 1}
    assert "read-only" in summary.failures[0].reason
    outputs = tmp_path / "photos-denoised"
    assert not [path for path in outputs.rglob("*") if path.name.startswith(".")]


def test_in_place_replaces_each_file_and_leaves_no_temp_file(tmp_path):
    root = _tree(tmp_path / "photos")
    flat = _write(root / "flat.png")
    summary = clean_images(plan_outputs(root, in_place=True), lambda batch: [image * 0 for image in batch])
    assert summary.ok and summary.counts[DONE] == 5
    assert np.asarray(Image.open(flat)).max() == 0
    assert Image.open(root / "trip 2019" / "deeper" / "日本.tif").format == "TIFF"
    hidden = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.name.startswith("."))
    assert hidden == [
        ".denoise-in-place",
        ".hidden.png",
        "trip 2019/.denoise-in-place",
        "trip 2019/deeper/.denoise-in-place",
    ]  # the journals of what was replaced; no temp file


def _every_mode(root):
    """One small image per stored mode and format `run` writes back: their pixels are random, so any filter
    changes them."""
    pixels = RNG.integers(0, 256, (12, 14, 4), dtype=np.uint8)
    Image.fromarray(pixels[..., 0]).save(_path(root / "gray.png"))
    Image.fromarray(pixels[..., :3]).save(root / "colour.jpg", quality=90)
    Image.fromarray(pixels).save(root / "alpha.png")
    Image.fromarray(pixels[..., :3]).quantize(16).save(root / "palette.png")
    Image.fromarray(pixels[..., 0].astype(np.uint16) * 257).save(root / "deep.tif")
    return root


def _path(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


@pytest.mark.parametrize("denoiser, unchanged", [(identity, True), (mean_filter, False)])
def test_files_written_with_every_pixel_as_it_was_are_told_apart(tmp_path, denoiser, unchanged):
    root = _every_mode(tmp_path / "photos")
    summary = clean_images(plan_outputs(root), denoiser)
    assert summary.ok and summary.counts[DONE] == 5
    assert [result.unchanged for result in summary.results] == [unchanged] * 5
    assert len(summary.unchanged) == (5 if unchanged else 0)


def test_one_changed_level_is_a_change(tmp_path):
    root = _every_mode(tmp_path / "photos")

    def one_level_changed_at_one_pixel(batch):
        outputs = [np.array(image) for image in batch]
        for image in outputs:
            image[3, 4] += 1.01 / 255 if image[3, 4].max() < 0.99 else -1.01 / 255
        return outputs

    summary = clean_images(plan_outputs(root / "gray.png"), one_level_changed_at_one_pixel)
    assert summary.ok and not summary.results[0].unchanged


def test_report_is_machine_readable(tmp_path):
    root = _tree(tmp_path / "photos")
    (root / "empty.png").write_bytes(b"")
    summary = clean_images(plan_outputs(root), identity)
    summary.write_report(tmp_path / "reports" / "run.json")
    report = json.loads((tmp_path / "reports" / "run.json").read_text(encoding="utf-8"))
    assert report["ok"] is False and report["counts"] == {"done": 4, "skipped": 0, "failed": 1}
    assert report["unchanged"] == 4  # the identity denoiser changed no pixel of the 4 files done
    assert {entry["status"] for entry in report["files"]} == {"done", "failed"}
    assert all(entry["unchanged"] for entry in report["files"] if entry["status"] == "done")
    assert any(entry["source"].endswith("日本.tif") for entry in report["files"])


def test_batch_size_must_be_positive(tmp_path):
    with pytest.raises(UsageError):
        clean_images([], identity, batch_size=0)


def test_shards_partition_the_plan_exactly_and_stay_put_when_files_are_added(tmp_path):
    root = tmp_path / "photos"
    for index in range(30):
        _write(root / f"d{index % 4}" / f"{index:02d}.png", (4, 4))
    jobs = plan_outputs(root)
    for count in (1, 2, 3, 7):
        shards = [shard_jobs(jobs, root, index, count) for index in range(count)]
        sources = [job.source for part in shards for job in part]
        assert sorted(sources) == sorted(job.source for job in jobs) and len(sources) == len(set(sources))
    before = {job.source: index for index in range(4) for job in shard_jobs(jobs, root, index, 4)}
    for index in range(30, 40):
        _write(root / "new" / f"{index}.png", (4, 4))
    after = {job.source: index for index in range(4) for job in shard_jobs(plan_outputs(root), root, index, 4)}
    assert all(after[source] == index for source, index in before.items())


def test_shards_do_not_depend_on_where_the_folder_is_mounted(tmp_path):
    for mount in ("a", "b/c"):
        _tree(tmp_path / mount / "photos")
    roots = [tmp_path / mount / "photos" for mount in ("a", "b/c")]
    first, second = (shard_jobs(plan_outputs(root), root, 1, 3) for root in roots)
    assert _relative(first, roots[0]) == _relative(second, roots[1])


@pytest.mark.parametrize("text", ["0/2", "1/2", "15/16"])
def test_parse_shard_reads_k_of_n(text):
    index, count = parse_shard(text)
    assert f"{index}/{count}" == text


@pytest.mark.parametrize("text", ["2/2", "3/2", "x", "1", "-1/2", "1/0", "a/b", "1/2/3"])
def test_parse_shard_refuses_bad_specs_with_the_form(text):
    with pytest.raises(UsageError, match="K/N"):
        parse_shard(text)


def test_a_tiny_memory_budget_cleans_one_image_at_a_time_in_plan_order(tmp_path):
    for index in range(6):
        _write(tmp_path / "in" / f"{index}.png", (8, 10, 3))
    calls, threads = [], set()

    def recording(batch):
        calls.append(len(batch))
        return identity(batch)

    jobs = plan_outputs(tmp_path / "in")
    summary = clean_images(jobs, recording, buffer_bytes=1, progress=lambda r: threads.add(threading.current_thread()))
    assert summary.counts[DONE] == 6 and calls == [1] * 6
    assert [r.source for r in summary.results] == [job.source for job in jobs]
    assert threads == {threading.main_thread()}  # progress is reported from the calling thread only


def test_the_next_images_are_read_while_the_model_runs(tmp_path, monkeypatch):
    for index in range(4):
        _write(tmp_path / "in" / f"{index}.png", (8, 10, 3))
    read = []
    real_read = batch.read_image
    monkeypatch.setattr(batch, "read_image", lambda path: read.append(path.name) or real_read(path))
    seen_while_first_ran = []

    def slow(images):
        if not seen_while_first_ran:
            deadline = time.monotonic() + 5
            while len(read) < 4 and time.monotonic() < deadline:
                time.sleep(0.01)
            seen_while_first_ran.append(len(read))
        return identity(images)

    assert clean_images(plan_outputs(tmp_path / "in"), slow, batch_size=1).ok
    assert seen_while_first_ran == [4]


def test_an_unexpected_encoder_error_fails_only_that_file(tmp_path, monkeypatch):
    root = _tree(tmp_path / "photos")
    real_save = batch.save_image

    def picky(loaded, pixels, dest, *more):
        if dest.name == "a.png":
            raise ValueError("encoder said no")
        return real_save(loaded, pixels, dest, *more)

    monkeypatch.setattr(batch, "save_image", picky)
    summary = clean_images(plan_outputs(root), identity)
    assert summary.counts == {DONE: 3, SKIPPED: 0, FAILED: 1}
    assert "a.png" in summary.failures[0].reason and "encoder said no" in summary.failures[0].reason


def test_ctrl_c_finishes_the_writes_under_way_and_raises_the_summary_so_far(tmp_path):
    for index in range(6):
        _write(tmp_path / "in" / f"{index}.png")
    calls = []

    def interrupted_on_the_third_batch(images):
        calls.append(len(images))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return identity(images)

    jobs = plan_outputs(tmp_path / "in")
    with pytest.raises(Interrupted) as stop:
        clean_images(jobs, interrupted_on_the_third_batch, batch_size=1)
    summary = stop.value.summary
    assert isinstance(stop.value, KeyboardInterrupt) and summary.interrupted and not summary.ok
    assert [r.status for r in summary.results] == [DONE, DONE] + [UNFINISHED] * 4  # the 2 handed over were written
    assert summary.counts == {DONE: 2, SKIPPED: 0, FAILED: 0, UNFINISHED: 4}
    assert sorted(p.name for p in (tmp_path / "in-denoised").iterdir()) == ["0.png", "1.png"]  # whole, no temps
    assert json.loads(summary.to_json())["interrupted"] is True


def test_a_transform_marked_takes_names_gets_each_relative_path(tmp_path):
    root = _tree(tmp_path / "photos")
    seen = []

    @takes_names
    def recording(images, names):
        seen.extend(names)
        return identity(images)

    assert clean_images(plan_outputs(root), recording, batch_size=3).ok
    assert sorted(seen) == ["B.JPG", "a.png", "trip 2019/café.png", "trip 2019/deeper/日本.tif"]
    assert clean_images(plan_outputs(root), identity, overwrite=True).ok  # a plain callable gets images only


def test_measure_reads_sizes_from_headers_and_counts_nothing_for_skipped_files(tmp_path):
    root = tmp_path / "in"
    _write(root / "a.png", (8, 10, 3))
    _write(root / "b.png", (6, 6))
    (root / "c.heic").write_bytes(b"x")
    jobs = plan_outputs(root)
    assert [tuple(size) for size in measure(jobs)] == [(80, 3), (36, 1), (0, 0)]
    _write(tmp_path / "in-denoised" / "a.png")
    assert [size.pixels for size in measure(jobs)] == [0, 36, 0]  # a done output is skipped
    results = clean_images(jobs, identity, sizes=measure(jobs)).results
    assert [(r.status, r.pixels) for r in results] == [(SKIPPED, 0), (DONE, 36), (SKIPPED, 0)]

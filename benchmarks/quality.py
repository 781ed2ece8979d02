"""Quality and speed of denoise models against classical baselines, every method cleaning the same noisy files.

For each noise spec the seeded noisy 8-bit copies are written once as PNG; each method reads those files and writes
its outputs as PNG, and the outputs are read back to be scored, so every row pays the same 8-bit rounding. Models
run through the code `denoise run` uses (batch.plan.plan_outputs + batch.runner.clean_images over an
inference.denoiser.Denoiser).
Seconds per megapixel are file in to file out (read, denoise, write), the median over images. Usage:

    python benchmarks/quality.py --clean ../shared/data/set12 --noise gaussian:25 \
        --tune ../shared/data/train400 --tune-count 8
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
from PIL import Image, ImageFilter

from denoise.batch.runner import clean_images, plan_outputs
from denoise.errors import DenoiseError
from denoise.evaluation import noisy_copies, psnr, ssim, to_8bit
from denoise.inference.shipped import default_model_path
from denoise.io.images import (
    IMAGE_SUFFIXES,
    read_image,
    save_array,
    to_float,
    to_integer,
)
from denoise.nn.model_files import resolve_model
from denoise.noise.specs import CAMERA_KINDS, GAUSSIAN, NoiseSpec, parse_noise
from denoise_plugins.folder import (
    center_crop,  # the folder loader's crop of validation images
)

NLM_FACTORS = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.2)  # h / sigma values tried when tuning on --tune
# h / sigma without --tune, by channel count: about the best on a few train400 / CBSD432 crops for sigma 15-50
# (colour needs less because OpenCV filters colour in CIELAB, whose lightness carries less of the noise).
NLM_DEFAULT_FACTOR = {1: 0.9, 3: 0.6}
MAX_WINDOW = 7  # largest window of the adaptive median filter
NOT_INSTALLED = "not installed (pip install .[bench])"
GAUSSIAN_ONLY = "skipped: needs Gaussian noise of known sigma"
SKIPPED = "skipped (--skip)"
# Camera noise has no one sigma: NLM's h and CBM3D's sigma are chosen from these multiples of the noise's measured
# standard deviation (noisy minus clean, over the --tune images, or over the test images without --tune).
CAMERA_NLM_FACTORS = (0.3, 0.4, 0.5, 0.7, 1.0, 1.4)
CAMERA_BM3D_FACTORS = (1.0, 1.4, 2.0)


class Setup(NamedTuple):
    clean: dict[str, np.ndarray]  # clean pixels by the PNG name of their noisy copy
    tune: dict[str, np.ndarray] | None
    models: list[Path | str]  # model files, or SHIPPED
    work: Path
    seed: int
    channels: int  # the most channels among the clean images
    skip: frozenset = frozenset()  # method slugs left out with --skip (BM3D takes minutes per megapixel)
    precision: str = "auto"  # the models' arithmetic, as `denoise run --precision`
    ensembles: tuple[int, ...] = (1,)  # each model runs once per size, as `denoise run --ensemble`


class Method(NamedTuple):
    name: str
    slug: str  # its output folder's name
    run: Callable[[Path, Path, list[str]], dict[str, float]] | None  # (noisy dir, out dir, names) -> seconds
    note: str = ""


def machine_info() -> dict:
    """CPU model and core counts, so that timings from different machines are not compared blindly."""
    cpu = "unknown"
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        cpu = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), cpu)
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": cpu, "cores": os.cpu_count(), "usable_cores": usable}


def read_folder(folder: Path, channels: int | None = None) -> dict[str, np.ndarray]:
    """Clean pixels of the images directly in folder, keyed by their noisy copy's PNG name; optionally re-channelled."""
    files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.name[0] != ".")
    if not files:
        sys.exit(f"No images found in {folder}.")
    images = {f"{path.stem}.png": read_image(path).pixels for path in files}
    if len(images) < len(files):
        sys.exit(f"Two images in {folder} share a name apart from the suffix; rename one.")
    return {name: with_channels(pixels, channels or pixels.shape[-1]) for name, pixels in images.items()}


def tune_images(folder: Path, channels: int, count: int | None, crop: int | None) -> dict[str, np.ndarray]:
    """The --tune images: the first `count` of the folder, each cut to its centre `crop` x `crop` when given."""
    images = dict(list(read_folder(folder, channels).items())[:count])
    if crop is None:
        return images
    return {name: center_crop(pixels, crop) for name, pixels in images.items()}


def with_channels(pixels: np.ndarray, channels: int) -> np.ndarray:
    # Tuning images must have the channel count of the images the tuned filter will see (gray NLM != colour NLM).
    if pixels.shape[-1] == channels:
        return pixels
    return np.repeat(pixels, channels, axis=-1) if channels == 3 else pixels.mean(axis=-1, keepdims=True)


def median3(pixels: np.ndarray) -> np.ndarray:
    """3x3 median filter (Pillow), each channel on its own."""
    image = to_integer(pixels)
    image = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
    return to_float(np.asarray(image.filter(ImageFilter.MedianFilter(3))))


def adaptive_median(pixels: np.ndarray) -> np.ndarray:
    """Hwang & Haddad's adaptive median filter for impulse noise (3x3 up to 7x7 windows), each channel on its own."""
    planes = to_integer(pixels)
    return to_float(np.stack([_adaptive_median_plane(planes[..., c]) for c in range(planes.shape[-1])], axis=-1))


def _adaptive_median_plane(plane: np.ndarray) -> np.ndarray:
    result, pending = plane.copy(), np.ones(plane.shape, dtype=bool)
    for size in range(3, MAX_WINDOW + 1, 2):
        padded = np.pad(plane, size // 2, mode="symmetric")
        rows, cols = np.nonzero(pending)  # only pixels not yet settled by a smaller window are looked at again
        windows = np.lib.stride_tricks.sliding_window_view(padded, (size, size))[rows, cols].reshape(-1, size * size)
        ranked = np.sort(windows, axis=1)
        low, median, high = ranked[:, 0], ranked[:, size * size // 2], ranked[:, -1]
        centre = plane[rows, cols]
        # Stage A: a median strictly between the window's extremes is no impulse itself, so it can be trusted.
        # Stage B: the pixel is kept unless it is itself an extreme of its window, the mark of an impulse.
        found = (low < median) & (median < high)
        value = np.where((low < centre) & (centre < high), centre, median)
        # Where no window up to the largest had a trustworthy median, its median is output (Gonzalez & Woods).
        done = found | (size == MAX_WINDOW)
        result[rows[done], cols[done]] = np.where(found, value, median)[done]
        pending[rows[done], cols[done]] = False
    return result


def nlm(pixels: np.ndarray, h: float) -> np.ndarray:
    """OpenCV non-local means with 7x7 patches and a 21x21 search window; h on the 0-255 scale."""
    import cv2

    image = to_integer(pixels)
    if image.shape[-1] == 1:
        return to_float(cv2.fastNlMeansDenoising(image[..., 0], None, h, 7, 21))
    # OpenCV reads colour as BGR and filters in CIELAB, so the channel order matters.
    bgr = np.ascontiguousarray(image[..., ::-1])
    return to_float(cv2.fastNlMeansDenoisingColored(bgr, None, h, h, 7, 21)[..., ::-1])


def bm3d_filter(pixels: np.ndarray, sigma: float) -> np.ndarray:
    """BM3D (gray) or CBM3D (colour), given the true noise sigma on the 0-255 scale."""
    import bm3d

    if pixels.shape[-1] == 1:
        return bm3d.bm3d(pixels[..., 0], sigma_psd=sigma / 255)[..., None]
    return bm3d.bm3d_rgb(pixels, sigma_psd=sigma / 255)


def nlm_strength(spec: NoiseSpec, setup: Setup) -> tuple[float, str]:
    """NLM's h for this sigma: the best of a small grid on the tune images, or a fixed default without them."""
    sigma, factor = spec.low, NLM_DEFAULT_FACTOR[setup.channels]
    if setup.tune is None:
        return factor * sigma, f"h={factor * sigma:g}, UNTUNED (h = {factor} sigma; give --tune)"
    print(f"[{spec}] tuning the NLM strength", file=sys.stderr)
    clean = list(setup.tune.values())
    noisy = noisy_copies(clean, spec, setup.seed + 1)  # other noise than the test files, besides other images

    def mean_psnr(h: float) -> float:
        return float(np.mean([psnr(c, to_8bit(nlm(n, h))) for c, n in zip(clean, noisy)]))

    h = max((factor * sigma for factor in NLM_FACTORS), key=mean_psnr)
    return h, f"h={h:g}, tuned on {len(clean)} --tune images"


def tuned_for_camera(spec: NoiseSpec, setup: Setup, method: Callable, factors: tuple) -> tuple[float, str]:
    """The strength of `method` (NLM's h, CBM3D's sigma) from factors x the noise's measured sigma, by the best mean
    PSNR on the --tune images (with other noise than the test files), or on the test images themselves: the best
    fixed strength for them, which flatters the baseline."""
    images = setup.tune or setup.clean
    clean = list(images.values())
    noisy = noisy_copies(clean, spec, setup.seed + 1 if setup.tune else setup.seed)
    sigma = float(np.std(np.concatenate([(n - c).ravel() for n, c in zip(noisy, clean)])) * 255)
    print(f"[{spec}] tuning {method.__name__} around the measured sigma {sigma:.2f}", file=sys.stderr)

    def mean_psnr(value: float) -> float:
        return float(np.mean([psnr(c, to_8bit(method(n, value))) for c, n in zip(clean, noisy)]))

    best = max((factor * sigma for factor in factors), key=mean_psnr)
    where = f"{len(clean)} --tune images" if setup.tune else "the test images (best fixed value for them)"
    return best, f"{best:.2f} = {best / sigma:.2g} x measured sigma {sigma:.2f}, tuned on {where}"


def run_filter(method: Callable, noisy_dir: Path, out_dir: Path, names: list[str]) -> dict[str, float]:
    """Clean each noisy file with a per-image function; seconds per file, file in to file out."""
    seconds = {}
    for name in names:
        started = time.perf_counter()
        save_array(method(read_image(noisy_dir / name).pixels), out_dir / name)
        seconds[name] = time.perf_counter() - started
    return seconds


SHIPPED = "shipped"  # the --model value (and the default) meaning: the shipped models, chosen as `denoise run` does


@functools.cache
def load_denoiser(path: str, precision: str, ensemble: int = 1):
    """A Denoiser over the model file (or denoise run's DefaultDenoiser), loaded once for all noise specs.

    This is where TensorFlow is imported.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from denoise.inference.denoiser import load_denoiser
    from denoise.inference.settings import RunSettings
    from denoise.inference.shipped import DefaultDenoiser

    settings = RunSettings(precision=precision, ensemble=ensemble)
    return DefaultDenoiser(settings=settings) if path == SHIPPED else load_denoiser(resolve_model(path), settings)


def run_model(
    path: str, precision: str, ensemble: int, noisy_dir: Path, out_dir: Path, names: list[str]
) -> dict[str, float]:
    """Clean the noisy files as `denoise run` does; the first pass traces the model's graphs, the second is timed."""
    jobs = [job for job in plan_outputs(noisy_dir, out_dir) if job.source.name in names]
    for _ in range(2):
        summary = clean_images(jobs, load_denoiser(path, precision, ensemble), overwrite=True)
    if not summary.ok:
        sys.exit("\n".join(failure.reason for failure in summary.failures))
    return {result.source.name: result.seconds for result in summary.results}


def methods(spec: NoiseSpec, setup: Setup) -> list[Method]:
    """Every row after the noisy input, in table order; a row without `run` only carries its note."""
    filters = functools.partial(functools.partial, run_filter)  # filters(f): a runner applying f file by file
    rows = [
        Method("median 3x3 (Pillow)", "median3", filters(median3)),
        Method(f"adaptive median (<= {MAX_WINDOW}x{MAX_WINDOW})", "adaptive-median", filters(adaptive_median)),
    ]
    gaussian, camera = spec.kind == GAUSSIAN, spec.kind in CAMERA_KINDS
    for name, slug, module in (("non-local means (OpenCV)", "nlm", "cv2"), ("BM3D / CBM3D", "bm3d", "bm3d")):
        if not (gaussian or camera) or importlib.util.find_spec(module) is None:
            rows.append(Method(name, slug, None, GAUSSIAN_ONLY if not (gaussian or camera) else NOT_INSTALLED))
        elif slug in setup.skip:  # decided here, before the strength is tuned for a row that will not run
            rows.append(Method(name, slug, None, SKIPPED))
        elif camera:
            method, factors = (nlm, CAMERA_NLM_FACTORS) if slug == "nlm" else (bm3d_filter, CAMERA_BM3D_FACTORS)
            value, note = tuned_for_camera(spec, setup, method, factors)
            keyword = "h" if slug == "nlm" else "sigma"
            rows.append(Method(name, slug, filters(functools.partial(method, **{keyword: value})), f"{keyword}={note}"))
        elif slug == "nlm":
            h, note = nlm_strength(spec, setup)
            rows.append(Method(name, slug, filters(functools.partial(nlm, h=h)), note))
        else:
            rows.append(Method(name, slug, filters(functools.partial(bm3d_filter, sigma=spec.low)), "true sigma"))
    runs = [(path, ensemble) for path in setup.models for ensemble in setup.ensembles]
    return rows + [model_method(i, path, setup.precision, ensemble) for i, (path, ensemble) in enumerate(runs)]


def model_method(index: int, path: Path | str, precision: str, ensemble: int = 1) -> Method:
    runner = functools.partial(run_model, str(path), precision, ensemble)
    times = f", x{ensemble}" if ensemble > 1 else ""  # --ensemble: the self-ensemble's size in the row's name
    if str(path) == SHIPPED:
        return Method(
            f"denoise run (shipped models{times})", f"model-{index}-shipped", runner, "noise kind detected per image"
        )
    return Method(f"model {Path(path).name}{times}", f"model-{index}-{Path(path).stem}", runner)


def score(clean: dict, out_dir: Path, seconds: dict | None) -> dict:
    """Mean PSNR/SSIM of the files in out_dir against the clean images, and the median seconds per megapixel."""
    images = {}
    for name, reference in clean.items():
        output = read_image(out_dir / name).pixels
        images[name] = {
            "psnr": psnr(reference, output),
            "ssim": ssim(reference, output),
            "seconds": seconds[name] if seconds else None,
        }
    per_mp = [seconds[n] / (clean[n].shape[0] * clean[n].shape[1] / 1e6) for n in clean] if seconds else None
    # An output identical to its reference (a clean image passed through) has an infinite PSNR, which would make
    # the mean infinite: the mean is over the others, and the count of identical ones is reported beside it.
    finite = [s["psnr"] for s in images.values() if np.isfinite(s["psnr"])]
    return {
        "psnr": float(np.mean(finite)) if finite else float("inf"),
        "identical": len(images) - len(finite),
        "ssim": float(np.mean([s["ssim"] for s in images.values()])),
        "s_per_mp": statistics.median(per_mp) if per_mp else None,
        "images": images,
    }


def benchmark(spec: NoiseSpec, setup: Setup) -> list[dict]:
    """Write the noisy files for one spec once, run every method on them, and return the table's rows."""
    folder = setup.work / str(spec).replace(":", "-")
    for name, noisy in zip(setup.clean, noisy_copies(list(setup.clean.values()), spec, setup.seed)):
        save_array(noisy, folder / "noisy" / name)
    rows = [{"method": "noisy input", "note": "", **score(setup.clean, folder / "noisy", None)}]
    for method in methods(spec, setup):
        if method.run is None or method.slug in setup.skip:
            rows.append({"method": method.name, "note": method.note if method.run is None else SKIPPED})
            continue
        print(f"[{spec}] {method.name}", file=sys.stderr)
        seconds = method.run(folder / "noisy", folder / method.slug, list(setup.clean))
        rows.append({"method": method.name, "note": method.note, **score(setup.clean, folder / method.slug, seconds)})
    return rows


def print_table(spec: NoiseSpec, count: int, rows: list[dict]) -> None:
    print(f"\n{spec}  ({count} images)")
    print(f"{'method':<40} {'PSNR dB':>8} {'SSIM':>7} {'s/MP':>9}  note")
    for row in rows:
        per_mp = f"{row['s_per_mp']:.3f}" if row.get("s_per_mp") is not None else "-"
        psnr_, ssim_ = (f"{row['psnr']:.2f}", f"{row['ssim']:.4f}") if "psnr" in row else ("-", "-")
        identical = row.get("identical", 0)
        note = "; ".join(filter(None, [row["note"], f"{identical} identical to the clean image, PSNR over the others"
                                       if identical and np.isfinite(row["psnr"]) else ""]))
        print(f"{row['method']:<40} {psnr_:>8} {ssim_:>7} {per_mp:>9}  {note}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clean", type=Path, required=True, help="folder of clean images to test on")
    parser.add_argument("--noise", action="append", required=True, help="a fixed noise level; repeatable")
    parser.add_argument(
        "--model",
        action="append",
        help=f"a .keras model or a shipped model's name (gaussian"
        f", ...), or {SHIPPED!r} for the shipped models "
        "picked per image as `denoise run` does (the default); repeatable",
    )
    parser.add_argument("--tune", type=Path, help="other clean images, used only to tune baseline strengths")
    parser.add_argument("--tune-count", type=int, help="tune on the first N images of --tune only (sorted by name)")
    parser.add_argument(
        "--tune-crop",
        type=int,
        help="tune on the centre of each --tune image, at most N pixels a "
        "side (CBM3D takes minutes per megapixel: tuning it for camera noise runs it 3 times)",
    )
    parser.add_argument("--work", type=Path, help="where noisy and cleaned files go (default: a temp folder)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write every number to this JSON file")
    parser.add_argument("--precision", default="auto", help="as denoise run --precision: auto, float32 or bfloat16")
    parser.add_argument(
        "--ensemble",
        type=int,
        action="append",
        choices=range(1, 9),
        metavar="N",
        help="run each model as `denoise run --ensemble N`; repeatable (default: 1)",
    )
    parser.add_argument(
        "--skip", default="", help="comma-separated methods to leave out: median3, adaptive-median, nlm, bm3d"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        specs = [parse_noise(text) for text in args.noise]
        if any(spec.is_range for spec in specs):
            sys.exit("Give fixed noise levels (gaussian:25, not gaussian:0-50): BM3D and the tables need one level.")
        clean = read_folder(args.clean)
        channels = max(pixels.shape[-1] for pixels in clean.values())
        models = args.model or [SHIPPED]
        for model in models:
            if model == SHIPPED:
                default_model_path(channels)  # a broken installation fails here; ModelError says what to do
        tune = tune_images(args.tune, channels, args.tune_count, args.tune_crop) if args.tune else None
        machine = machine_info()
        print(f"CPU: {machine['cpu']}, {machine['cores']} cores ({machine['usable_cores']} usable)")
        print(f"clean: {args.clean} ({len(clean)} images), tune: {args.tune or 'none'}, seed {args.seed}")
        with tempfile.TemporaryDirectory(prefix="denoise-quality-") as temp:
            skip = frozenset(filter(None, args.skip.split(",")))
            setup = Setup(
                clean,
                tune,
                models,
                args.work or Path(temp),
                args.seed,
                channels,
                skip,
                args.precision,
                tuple(args.ensemble or [1]),
            )
            results = {str(spec): benchmark(spec, setup) for spec in specs}
    except DenoiseError as exc:  # bad specs, unreadable images or models: the message says what to do
        sys.exit(str(exc))
    for spec in specs:
        print_table(spec, len(clean), results[str(spec)])
    if args.json:
        report = {
            "machine": machine,
            "clean": str(args.clean),
            "tune": str(args.tune) if args.tune else None,
            "seed": args.seed,
            "models": [str(m) for m in models],
            "results": results,
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

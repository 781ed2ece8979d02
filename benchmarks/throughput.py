"""Throughput of `denoise run`: megapixels per second end to end, the model alone, overhead, peak memory, GFLOP/s.

Scenarios are folders of synthetic but natural-looking JPEGs (smooth gradients, texture, edges, sensor noise),
written once into a temporary folder: a few large photos, many small ones, and optionally one 50 MP photo. Each
scenario runs in its own child process, so its peak RSS (ru_maxrss) is its own; inside it the files are cleaned
through the code `denoise run` uses (batch.plan.plan_outputs + batch.runner.clean_images over an
inference.denoiser.Denoiser with the same options), once to warm up (graph tracing) and then --repeats times, with
the median reported. Figures:

- end to end MP/s: pixels of the folder / wall seconds of clean_images (read, denoise, write, fsync);
- inference MP/s: the same pixels through the Denoiser alone, on arrays already in memory (no files);
- overhead: 1 - (pixels / inference rate) / wall, the share of wall time not explained by the model alone;
- model GFLOP/s: FLOPs per pixel x inference rate. FLOPs are counted from layer shapes: 2 x multiply-adds of
  every Conv2D and Conv2DTranspose (biases, ReLUs, adds and the 2x2 folds are left out, a few percent), times 3
  for a grayscale model, which runs once per colour channel of these RGB photos;
- matmul GFLOP/s: a float32 4096x4096 tf.matmul in the same process setup, the machine's practical ceiling;
- first output: seconds from launching the child (Python, TensorFlow, model load, tracing) to its first file.

Each scenario runs once per combination of --precision, --runtime and --max-isa, one after the other. --max-isa
AVX2 sets ONEDNN_MAX_CPU_ISA=AVX2 for the child, so TensorFlow's kernels run as on a CPU without AVX-512 or AMX, and
"auto" precision is float32 there, as on such a CPU. XNNPACK (the litert runtime) has no such switch: on an AVX-512
machine its AVX2-limited row still uses AVX-512, so the AVX2 figure for it comes from an AVX2 machine.

Usage (the README's Performance section was made with these commands):

    python benchmarks/throughput.py --repeats 3 --huge
    python benchmarks/throughput.py --model camera-colour --small 0 --repeats 3 --max-isa none,AVX2
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from quality import machine_info  # noqa: E402  (the same CPU description as the quality benchmark)

from denoise.errors import DenoiseError  # noqa: E402
from denoise.inference.settings import RunSettings
from denoise.inference.shipped import default_model_path  # noqa: E402
from denoise.nn.model_files import resolve_model


def natural_image(height: int, width: int, seed: int) -> np.ndarray:
    """An RGB uint8 photo stand-in: smooth colour gradients, blobs with edges, fine texture and sensor noise."""
    rng = np.random.default_rng(seed)

    def field(cells: int, size=(width, height)) -> np.ndarray:  # smooth random field, upsampled bicubically
        small = Image.fromarray(rng.uniform(0, 255, (cells, cells * width // height + 1)).astype(np.uint8))
        return np.asarray(small.resize(size, Image.BICUBIC), np.float32) / 255

    planes = [0.5 * field(3) + 0.3 * field(12) + 0.1 * field(200) for _ in range(3)]
    image = np.stack(planes, axis=-1)
    edges = field(6) > 0.55  # hard-edged regions, as objects against a background
    image = np.where(edges[..., None], image * 0.6 + 0.3, image)
    image += rng.normal(0, 12 / 255, image.shape).astype(np.float32)
    return (np.clip(image, 0, 1) * 255).astype(np.uint8)


def write_folder(folder: Path, count: int, height: int, width: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        Image.fromarray(natural_image(height, width, index)).save(folder / f"img{index:04d}.jpg", quality=90)


def scenarios(args) -> list[tuple[str, int, int, int]]:
    """(name, count, height, width) of each folder to measure."""
    side = int((args.large_mp * 1e6 * 3 / 4) ** 0.5)  # 4:3 photos
    found = [
        (f"{args.large} x {args.large_mp} MP JPEG", args.large, side, side * 4 // 3),
        (f"{args.small} x {args.small_size}x{args.small_size} JPEG", args.small, args.small_size, args.small_size),
    ]
    if args.huge:
        found.append(("1 x 50 MP JPEG", 1, 6124, 8165))
    return [scenario for scenario in found if scenario[1] > 0]  # --small 0 / --large 0: that folder is not measured


def model_path(args, work: Path) -> Path:
    """--model, else the shipped model for colour images, else a new width-32 depth-3 U-Net saved in the work folder."""
    if args.model:
        return resolve_model(args.model)
    try:
        return default_model_path(3)
    except DenoiseError:
        pass
    from denoise.nn.architectures import build_model
    from denoise.nn.saving import save_model

    path = work / "unet-w32-d3.keras"
    save_model(build_model("unet", 3, width=32, depth=3), path, {"architecture": "unet", "channels": 3})
    return path


def child(args) -> None:
    """Run one scenario in this process and print its figures as JSON."""
    from denoise.runtime import start_tensorflow

    threads = start_tensorflow(args.threads)
    from denoise.batch.runner import clean_images, plan_outputs
    from denoise.inference.denoiser import load_denoiser
    from denoise.io.images import read_image

    settings = RunSettings(reuse_input=True, precision=args.precision, runtime=args.runtime)
    denoiser = load_denoiser(Path(args.model), settings)
    jobs = plan_outputs(args.folder, args.out)
    first: list[float] = []  # when the first output was written, to time start-up as a user sees it
    clean_images(
        jobs,
        denoiser,
        overwrite=True,
        writers=min(4, 2 * threads),  # warm-up: traces the model's graphs
        progress=lambda result: first or first.append(time.time()),
    )
    walls = []
    for _ in range(args.repeats):
        begun = time.perf_counter()
        summary = clean_images(jobs, denoiser, overwrite=True, writers=min(4, 2 * threads))
        walls.append(time.perf_counter() - begun)
        assert summary.ok, summary.failures
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # before the copies the next line makes
    inference = _inference_seconds(denoiser, [read_image(job.source).pixels for job in jobs], args.repeats)
    pixels = sum(Image.open(job.source).size[0] * Image.open(job.source).size[1] for job in jobs)
    print(
        json.dumps(
            {
                "pixels": pixels,
                "wall": walls,
                "precision": denoiser.precision,
                "runtime": denoiser.runtime,
                "inference": inference,
                "threads": threads,
                "first_output_at": first[0],
                "peak_rss_mib": peak,
                # A grayscale model cleans each colour channel on its own: three runs per RGB pixel.
                "flops_per_pixel": flops_per_pixel(denoiser.model) * 3 // denoiser.channel_path.channels,
            }
        )
    )


def _inference_seconds(denoiser, images: list[np.ndarray], repeats: int) -> list[float]:
    """Seconds of the model alone on decoded images, grouped as clean_images groups them."""
    from denoise.batch.settings import ALONE_PIXELS, DEFAULT_BATCH_SIZE

    alone = [[image] for image in images if image[..., 0].size >= ALONE_PIXELS]
    rest = [image for image in images if image[..., 0].size < ALONE_PIXELS]
    groups = alone + [rest[i : i + DEFAULT_BATCH_SIZE] for i in range(0, len(rest), DEFAULT_BATCH_SIZE)]
    times = []
    for _ in range(repeats):
        total = 0.0
        for group in groups:
            batch = [image.copy() for image in group]  # a lone image may be cleaned in place (reuse_input)
            begun = time.perf_counter()
            denoiser(batch)
            total += time.perf_counter() - begun
        times.append(total)
    return times


def flops_per_pixel(model) -> float:
    """2 x the multiply-adds of every Conv2D / Conv2DTranspose per input pixel, from the layers' shapes."""
    import keras

    convs = [layer for layer in model.layers if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose))]
    probe = keras.Model(model.inputs, [layer.input for layer in convs] + [layer.output for layer in convs])
    size = 64
    shapes = [tuple(t.shape) for t in probe(np.zeros((1, size, size, model.inputs[0].shape[-1]), np.float32))]
    inputs, outputs = shapes[: len(convs)], shapes[len(convs) :]
    total = 0
    for layer, shape_in, shape_out in zip(convs, inputs, outputs):
        kh, kw = layer.kernel_size
        if isinstance(layer, keras.layers.Conv2DTranspose):  # every input position scatters a kh x kw x out block
            total += shape_in[0] * shape_in[1] * shape_in[2] * kh * kw * shape_in[3] * shape_out[3]
        else:
            total += shape_out[0] * shape_out[1] * shape_out[2] * kh * kw * shape_in[3] * shape_out[3]
    return 2 * total / (size * size)


def matmul_gflops(threads: int | None, repeats: int = 5) -> float:
    """float32 4096x4096 matrix product rate, TensorFlow with the same thread settings as the scenarios."""
    from denoise.runtime import start_tensorflow

    start_tensorflow(threads)
    import tensorflow as tf

    a = tf.random.uniform((4096, 4096))
    b = tf.random.uniform((4096, 4096))
    tf.matmul(a, b).numpy()
    times = []
    for _ in range(repeats):
        begun = time.perf_counter()
        tf.matmul(a, b).numpy()
        times.append(time.perf_counter() - begun)
    return 2 * 4096**3 / statistics.median(times) / 1e9


def run_scenario(args, name: str, folder: Path, model: Path, work: Path, path: tuple[str, str, str]) -> dict:
    precision, runtime, isa = path
    command = [
        sys.executable,
        __file__,
        "--child",
        "--folder",
        str(folder),
        "--out",
        str(work / "out" / folder.name),
        "--model",
        str(model),
        "--repeats",
        str(args.repeats),
        "--precision",
        precision,
        "--runtime",
        runtime,
    ]
    if args.threads:
        command += ["--threads", str(args.threads)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    if isa != "none":
        env["ONEDNN_MAX_CPU_ISA"] = isa
    begun = time.time()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        sys.exit(f"{name} failed:\n{done.stderr[-3000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    wall, inference = statistics.median(figures["wall"]), statistics.median(figures["inference"])
    megapixels = figures["pixels"] / 1e6
    return {
        "scenario": name,
        "precision": figures["precision"],
        "runtime": figures["runtime"],
        "max_isa": isa,
        "megapixels": round(megapixels, 2),
        "end_to_end_mp_s": megapixels / wall,
        "inference_mp_s": megapixels / inference,
        "overhead": 1 - inference / wall,
        "peak_rss_mib": figures["peak_rss_mib"],
        "model_gflop_s": figures["flops_per_pixel"] * megapixels / inference / 1e3,
        "flops_per_pixel": figures["flops_per_pixel"],
        "threads": figures["threads"],
        "first_output_s": figures["first_output_at"] - begun,
        "child_seconds": round(time.time() - begun, 1),
        "wall_s": figures["wall"],
        "inference_s": figures["inference"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model",
        help="a .keras model or a shipped model's name, e.g. camera-colour (default: the "
        "shipped Gaussian model for colour images, else a new U-Net)",
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--large", type=int, default=4, help="number of large photos")
    parser.add_argument("--large-mp", type=float, default=12.0)
    parser.add_argument("--small", type=int, default=200, help="number of small images")
    parser.add_argument("--small-size", type=int, default=256)
    parser.add_argument("--huge", action="store_true", help="also one 50 MP photo (peak memory check)")
    parser.add_argument("--threads", type=int, help="as denoise run --threads (default: all usable cores)")
    parser.add_argument(
        "--precision",
        default="auto",
        help="as denoise run --precision; several, comma-separated "
        "(e.g. float32,bfloat16), run each scenario once per precision, one after the other",
    )
    parser.add_argument("--runtime", default="auto", help="as denoise run --runtime; several, comma-separated "
                        "(e.g. tensorflow,litert), as --precision")
    parser.add_argument("--max-isa", default="none", help="ONEDNN_MAX_CPU_ISA for the child (e.g. AVX2), none for no "
                        "limit; several, comma-separated (none,AVX2: the default path and an AVX2 CPU's side by side)")
    parser.add_argument("--json", help="write every figure here too")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    if not scenarios(args):
        parser.error("nothing to measure: --large and --small are both 0 and --huge is not given")
    print(json.dumps(machine_info()))
    with tempfile.TemporaryDirectory(prefix="denoise-throughput-") as temp:
        work = Path(temp)
        model = model_path(args, work)
        rows = []
        for index, (name, count, height, width) in enumerate(scenarios(args)):
            folder = work / f"scenario{index}"
            write_folder(folder, count, height, width)
            for path in itertools.product(*(option.split(",") for option in (args.precision, args.runtime,
                                                                              args.max_isa))):
                rows.append(run_scenario(args, name, folder, model, work, path))
                print(_row(rows[-1]), flush=True)
    ceiling = matmul_gflops(args.threads)
    print(
        f"float32 4096x4096 matmul: {ceiling:.0f} GFLOP/s; model FLOPs per RGB pixel: "
        f"{rows[0]['flops_per_pixel']:.0f}; model {model.name}"
    )
    if args.json:
        Path(args.json).write_text(
            json.dumps({"machine": machine_info(), "matmul_gflop_s": ceiling, "rows": rows}, indent=2)
        )


def _row(row: dict) -> str:
    return (
        f"{row['scenario']:<24} {row['precision']:<8} {row['runtime']:<10} isa {row['max_isa']:<6} "
        f"{row['megapixels']:7.1f} MP  "
        f"end-to-end {row['end_to_end_mp_s']:6.2f} MP/s  "
        f"inference {row['inference_mp_s']:6.2f} MP/s  overhead {row['overhead'] * 100:5.1f}%  "
        f"peak RSS {row['peak_rss_mib']:6.0f} MiB  model {row['model_gflop_s']:5.1f} GFLOP/s  "
        f"first output after {row['first_output_s']:4.1f} s  threads {row['threads']}"
    )


if __name__ == "__main__":
    main()

"""What `--html` adds to a run, per image: the time to make an image's pictures and the bytes they take.

A sample photo is enlarged to each size (so the pictures are made from a photo's content), a model's output is
stood in for by a blurred copy, and HtmlReport makes the pictures as `denoise run --html` does. Medians of
--repeats; the whole report of N images is then about N times the bytes printed.

    python benchmarks/report_cost.py --sizes 1,12,50 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from denoise.io.images import to_float
from denoise.report.html import HtmlReport

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "noisy" / "chelsea.png"


def photo(megapixels: float) -> tuple[np.ndarray, np.ndarray]:
    """A noisy sample photo enlarged to about `megapixels`, as float pixels, and a smoothed copy as the output."""
    image = Image.open(SAMPLE).convert("RGB")
    scale = (megapixels * 1e6 / (image.width * image.height)) ** 0.5
    image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.BILINEAR)
    return to_float(np.asarray(image)), to_float(np.asarray(image.filter(ImageFilter.GaussianBlur(1.5))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,12,50", help="image sizes in megapixels, comma-separated")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print("megapixels   seconds per image (median)   seconds per MP   report bytes per image")
    for megapixels in (float(text) for text in args.sizes.split(",")):
        before, after = photo(megapixels)
        seconds, sizes = [], []
        for repeat in range(args.repeats):
            with tempfile.TemporaryDirectory() as folder:
                report = HtmlReport(Path(folder), "cost")
                started = time.perf_counter()
                report.before(f"image{repeat}", before)(after)
                seconds.append(time.perf_counter() - started)
                sizes.append(sum(path.stat().st_size for path in Path(folder).rglob("*") if path.is_file()))
        median = statistics.median(seconds)
        print(f"{before.shape[0] * before.shape[1] / 1e6:10.1f}   {median:26.3f}   {median / megapixels:14.3f}   "
              f"{statistics.median(sizes):22,.0f}")


if __name__ == "__main__":
    main()

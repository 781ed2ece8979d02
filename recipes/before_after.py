"""A before-and-after picture for the docs: the same crop of noisy and cleaned images side by side, enlarged.

    python recipes/before_after.py samples/noisy-camera samples/noisy-camera-denoised --out docs/images/camera.png

Each image found in both folders (by name) gives one row: the noisy crop on the left, the cleaned one on the right,
each enlarged `--zoom` times without smoothing, so the noise stays visible as pixels.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PIL import Image, ImageDraw

GAP = 8


def crop_box(size: tuple[int, int], side: int) -> tuple[int, int, int, int]:
    """A side x side box at the centre of an image of this size (smaller if the image is)."""
    width, height = size
    side = min(side, width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return left, top, left + side, top + side


def row(noisy: Path, clean: Path, side: int, zoom: int) -> Image.Image:
    pair = [Image.open(path).convert("RGB") for path in (noisy, clean)]
    box = crop_box(pair[0].size, side)
    crops = [image.crop(box).resize(((box[2] - box[0]) * zoom, (box[3] - box[1]) * zoom), Image.NEAREST)
             for image in pair]
    out = Image.new("RGB", (crops[0].width * 2 + GAP, crops[0].height), "white")
    out.paste(crops[0], (0, 0))
    out.paste(crops[1], (crops[0].width + GAP, 0))
    draw = ImageDraw.Draw(out)
    for x, label in ((4, f"{noisy.name}: noisy"), (crops[0].width + GAP + 4, "denoise run")):
        draw.rectangle((x - 2, 2, x + 6 * len(label) + 4, 16), fill="white")
        draw.text((x, 4), label, fill="black")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("noisy", type=Path)
    parser.add_argument("cleaned", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--side", type=int, default=128, help="side of the crop in pixels of the image")
    parser.add_argument("--zoom", type=int, default=2)
    args = parser.parse_args(argv)
    names = sorted(path.name for path in args.noisy.iterdir() if (args.cleaned / path.name).is_file())
    if not names:
        print(f"no image is in both {args.noisy} and {args.cleaned}", file=sys.stderr)
        return 1
    rows = [row(args.noisy / name, args.cleaned / name, args.side, args.zoom) for name in names]
    sheet = Image.new("RGB", (max(r.width for r in rows), sum(r.height for r in rows) + GAP * (len(rows) - 1)), "white")
    top = 0
    for image in rows:
        sheet.paste(image, (0, top))
        top += image.height + GAP
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out, optimize=True)
    print(f"{len(rows)} rows written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

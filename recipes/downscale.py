"""Shrink a folder of photos by a whole factor with a box filter, into another folder (PNG, 8-bit RGB).

Full-resolution photos carry their camera's own noise, sharpening and JPEG traces at 1:1; averaging each block of
factor x factor pixels removes most of them, so the result can serve as the clean side of training pairs.
Files already written are skipped, so an interrupted run can be repeated.

    python recipes/downscale.py ../shared/data/unsplash30 --factor 4 --out photos/unsplash30
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from PIL import Image, ImageOps

from denoise.io.images import IMAGE_SUFFIXES


def downscale(source: Path, target: Path, factor: int) -> None:
    """One photo, upright (EXIF orientation applied), RGB, box-filtered by `factor`, written atomically as PNG."""
    with Image.open(source) as image:
        image = ImageOps.exif_transpose(image).convert("RGB")
        small = image.reduce(factor) if factor > 1 else image
    temporary = target.with_name(f".{target.name}.tmp")
    small.save(temporary, format="PNG")
    os.replace(temporary, target)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a flat folder of photos")
    parser.add_argument("--factor", type=int, required=True, help="shrink each side by this whole factor (1: copy)")
    parser.add_argument("--out", type=Path, required=True, help="the folder to write the PNGs into")
    args = parser.parse_args(argv)
    if args.factor < 1:
        parser.error("--factor must be 1 or more")
    sources = sorted(path for path in args.folder.iterdir() if path.suffix.lower() in IMAGE_SUFFIXES)
    if not sources:
        print(f"no photos found in {args.folder}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    for source in sources:
        target = args.out / f"{source.stem}.png"
        if not target.exists():
            downscale(source, target, args.factor)
    print(f"{len(sources)} photos of {args.folder} shrunk {args.factor}x into {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

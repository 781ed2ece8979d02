"""How a model runs on images: one typed object holding every default of `denoise run`'s model options.

The CLI's options, the library and the benchmarks all build a RunSettings, so a default is decided here and only
described elsewhere. NumPy-free and TensorFlow-free, so the CLI can show these defaults in --help for free.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_TILE = 1024  # core size in pixels; a 1024 + 2*96 tile of the default model needs a few hundred MB
# bfloat16 convolutions (oneDNN) need more memory per pixel: a 50 MP photo peaked at 2328 MiB with 1024 px tiles
# against 1975 MiB in float32, and at 1999-2005 MiB with 768 px tiles (docs/performance.md).
BFLOAT16_TILE = 768
# LiteRT (XNNPACK) plans one buffer arena for a tile, and it grows with the tile: the default Gaussian model's took
# 660 MB for a 1216-pixel tile (1024 + margins), 410 for 960, 220 for 704. Its kept pixels ran at about the same
# speed for cores of 512, 768 and 1024 (0.34, 0.35, 0.33 MP/s); the cheaper camera model cleaned a 12 MP JPEG 9%
# slower with 512 than with 1024 (23.5 against 21.6 s) for 385 MB less. With 512 (and tiles all of one size,
# tiling.plan_windows) a 50 MP PNG peaked at 1826 MiB, where it took 2228 (docs/performance.md).
LITERT_TILE = 512
# Context around each tile's core: wider than the shipped models' reach (depth-3 U-Nets), so a tiled image comes out
# exactly as it would whole. At 64 pixels, with tiles of 32 on 300x300 sample crops, 0.1-6.7% of the pixels came out
# 1-4 levels off the whole-image output; at 96 none did (`python benchmarks/tile_seams.py`, 2026-11-30). On the
# default 1024-pixel tiles that costs 41% more pixels than a tile keeps, where 64 cost 27%.
DEFAULT_MARGIN = 96
# Pixels per model call: one default tile (1216 x 1216 with its margins), or many small images at once. The model
# needs about 100 bytes of activations per pixel, so this is what keeps a run of big photos under 2 GB.
MAX_BATCH_PIXELS = 1_500_000
# A self-ensemble averages the model over up to 8 flips and transposes of each image (the symmetries of a square),
# one model run each (orientations.py).
MAX_ENSEMBLE = 8
DEFAULT_PRECISION = "auto"  # bfloat16 where the CPU computes it natively, else float32 (runtime.resolve_precision)
DEFAULT_RUNTIME = "auto"  # LiteRT for float32 on a CPU, else TensorFlow (runtime.resolve_engine)


@dataclass(frozen=True)
class RunSettings:
    """How to run a model: tiling, memory per call, arithmetic and the flip ensemble."""

    tile: int | None = None  # core side of a tile; None: DEFAULT_TILE, BFLOAT16_TILE in bfloat16, LITERT_TILE
    margin: int = DEFAULT_MARGIN  # context around each tile's core (DEFAULT_MARGIN says how much that is)
    max_batch_pixels: int = MAX_BATCH_PIXELS
    # A caller that owns its arrays (denoise run) lets a lone large image be cleaned in place, band by band,
    # instead of beside a second full-size float copy: on a 50 MP colour photo that saves about 500 MB.
    reuse_input: bool = False
    precision: str = DEFAULT_PRECISION  # "float32", "bfloat16" or "auto"
    runtime: str = DEFAULT_RUNTIME  # "tensorflow", "litert" or "auto"
    ensemble: int = 1  # average the outputs of this many orientations of each image (N times the time)

    def __post_init__(self):
        if not 1 <= self.ensemble <= MAX_ENSEMBLE:
            raise ValueError(f"ensemble must be from 1 to {MAX_ENSEMBLE}, not {self.ensemble}")
        if self.margin < 0 or self.max_batch_pixels < 1 or (self.tile is not None and self.tile < 1):
            raise ValueError(f"tile, margin and max_batch_pixels must be positive: {self}")

    def tile_for(self, precision: str, runtime: str = "tensorflow") -> int:
        """The tile core side for a resolved precision ("float32" or "bfloat16") and runtime."""
        if self.tile:
            return self.tile
        if runtime == "litert":
            return LITERT_TILE
        return BFLOAT16_TILE if precision == "bfloat16" else DEFAULT_TILE

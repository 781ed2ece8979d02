"""A static before-and-after report of a run (`denoise run --html DIR`) or an evaluation (`denoise eval --html DIR`).

Plain HTML and CSS, no script and no server: DIR/index.html lists every image with its thumbnails, the kind and
level of noise detected, the model, how much the output changed and the time taken, the images left unchanged and
those that failed first; DIR/pages/ holds a page per image with the two side by side, zoomed crops where the output
changed most and least, and a map of what was removed. The pictures are made while the pixels are in memory
(assets.py), so the inputs are never decoded a second time.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from denoise.errors import DenoiseError
from denoise.io.files import write_atomically
from denoise.io.images import array_to_uint8
from denoise.report.assets import CROP, ImageAssets, make_assets

# Whatever runs a model says, per image, which kind of noise it found, its level and the model that cleaned it.
Describe = Callable[[np.ndarray], "Detected"]


@dataclass(frozen=True)
class Detected:
    kind: str  # "gaussian", "camera", "salt-and-pepper", "" when not detected (a model given), or the noise added
    sigma: float  # the white-noise level measured in the input, 0-255 (NaN: not measured)
    model: str


@dataclass
class Entry:
    """One image of the report; status and time come from the run's summary when it has one."""

    name: str
    number: int
    detected: Detected | None = None
    assets: ImageAssets | None = None
    status: str = "done"
    reason: str = ""
    seconds: float | None = None
    unchanged: bool = False
    scores: dict[str, float] = field(default_factory=dict)  # eval: PSNR and SSIM before and after

    @property
    def page(self) -> str:
        return f"pages/{self.number:05d}.html"


class HtmlReport:
    """Collects the pictures of each image as a run goes on, then writes the pages (write)."""

    def __init__(self, folder: Path, title: str, describe: Describe | None = None):
        self.folder, self.title, self.describe = Path(folder), title, describe
        self.entries: dict[str, Entry] = {}
        try:
            (self.folder / "images").mkdir(parents=True, exist_ok=True)
            (self.folder / "pages").mkdir(exist_ok=True)
        except OSError as exc:
            raise DenoiseError(f"Cannot write the HTML report into {self.folder}: {exc}. Give --html a writable "
                               "folder.") from exc

    def before(self, name: str, pixels: np.ndarray) -> Callable[[np.ndarray], None]:
        """Note an input (float HxWxC) before it is cleaned; the returned function takes the cleaned pixels.

        The input is kept as 8 bits until then: the denoiser may clean it in place.
        """
        snapshot = array_to_uint8(pixels)
        detected = self.describe(pixels) if self.describe else None

        def after(cleaned: np.ndarray) -> None:
            try:
                self.add(name, snapshot, cleaned, detected)
            except OSError as exc:  # the image itself was cleaned; only its pictures are missing from the report
                self.entries[name] = Entry(name, len(self.entries), detected, reason=f"no pictures: {exc}")

        return after

    def add(self, name: str, before: np.ndarray, after: np.ndarray, detected: Detected | None = None,
            scores: dict[str, float] | None = None) -> None:
        """Make one image's pictures: before as uint8 (or float) HxWxC, after as float in [0, 1]."""
        entry = Entry(name, len(self.entries), detected, scores=scores or {})
        before = before if before.dtype == np.uint8 else array_to_uint8(before)
        entry.assets = make_assets(before, after, self.folder / "images", f"{entry.number:05d}")
        self.entries[name] = entry

    def write(self, results=()) -> Path:
        """Write index.html and the image pages; results, (name, FileResult) pairs of a run, add status and time."""
        for name, result in results:
            entry = self.entries.setdefault(name, Entry(name, len(self.entries)))
            entry.status, entry.reason, entry.seconds = result.status, result.reason, result.seconds
            entry.unchanged = result.unchanged
        entries = sorted(self.entries.values(), key=_order)
        for entry in entries:
            if entry.assets is not None:
                self._write_page(entry)
        index = self.folder / "index.html"
        _write_text(index, _page(self.title, f"<h1>{_escape(self.title)}</h1>" + _summary(entries) + _table(entries)))
        return index

    def _write_page(self, entry: Entry) -> None:
        files = {key: f"../{value}" for key, value in entry.assets.files.items()}
        crops = "".join(
            f"<figure><figcaption>{label}, at ({entry.assets.crops[which][0]}, {entry.assets.crops[which][1]}), "
            f"{CROP}x{CROP} pixels enlarged 3 times: before | after</figcaption>"
            f"<img class=crop src='{files[which + '-before']}' alt='{which} change, before'>"
            f"<img class=crop src='{files[which + '-after']}' alt='{which} change, after'></figure>"
            for which, label in (("most", "Where the output changed most"), ("least", "Where it changed least")))
        body = (f"<p><a href='../index.html'>All images</a></p><h1>{_escape(entry.name)}</h1>{_facts(entry)}"
                f"<div class=pair><figure><figcaption>Before</figcaption><img src='{files['view-before']}' "
                f"alt='before'></figure><figure><figcaption>After</figcaption><img src='{files['view-after']}' "
                f"alt='after'></figure></div>{crops}"
                f"<figure><figcaption>What was removed (input minus output): mid-gray where nothing changed, "
                f"contrast raised {entry.assets.map_gain:.1f} times. Noise shows as even grain; edges or texture "
                f"here are detail the model took away.</figcaption><img src='{files['map']}' alt='what was removed'>"
                "</figure>")
        _write_text(self.folder / entry.page, _page(entry.name, body))


def _order(entry: Entry) -> tuple[int, int]:
    """Failed first, then unchanged (no noise found), then the rest in the run's order."""
    rank = 0 if entry.status == "failed" else 1 if entry.unchanged or entry.status == "unfinished" else 2
    return rank, entry.number


def _summary(entries: list[Entry]) -> str:
    counts = {status: sum(1 for e in entries if e.status == status) for status in ("done", "skipped", "failed")}
    unchanged = sum(1 for e in entries if e.unchanged)
    return (f"<p class=summary>{len(entries)} images: {counts['done']} cleaned ({unchanged} left unchanged: no "
            f"noise found), {counts['skipped']} skipped, {counts['failed']} failed.</p>")


def _table(entries: list[Entry]) -> str:
    rows = "".join(_row(entry) for entry in entries)
    return ("<table><thead><tr><th>before</th><th>after</th><th>image</th><th>noise</th><th>model</th>"
            f"<th>change (RMS)</th><th>time</th></tr></thead><tbody>{rows}</tbody></table>")


def _row(entry: Entry) -> str:
    name = _escape(entry.name)
    if entry.assets is None:
        note = f"<strong>{entry.status}</strong>: {_escape(entry.reason)}" if entry.reason else entry.status
        return f"<tr class={entry.status}><td></td><td></td><td>{name}<br>{note}</td><td colspan=4></td></tr>"
    files = entry.assets.files
    flag = " <strong>unchanged</strong>" if entry.unchanged else ""
    detected = entry.detected
    noise = _noise(detected)
    noise += "".join(f"<br>{key} {_score(key, value)}" for key, value in entry.scores.items())
    return (f"<tr class={'unchanged' if entry.unchanged else entry.status}>"
            f"<td><a href='{entry.page}'><img src='{files['before']}' alt='{name} before'></a></td>"
            f"<td><a href='{entry.page}'><img src='{files['after']}' alt='{name} after'></a></td>"
            f"<td><a href='{entry.page}'>{name}</a>{flag}</td><td>{noise}</td>"
            f"<td>{_escape(detected.model) if detected else ''}</td><td>{entry.assets.rms_change:.2f} levels</td>"
            f"<td>{'' if entry.seconds is None else f'{entry.seconds:.2f} s'}</td></tr>")


def _facts(entry: Entry) -> str:
    facts = [f"status: {entry.status}" + (" (unchanged: no noise found)" if entry.unchanged else "")]
    if entry.detected:
        facts.append(f"noise: {_noise(entry.detected)}; model: {_escape(entry.detected.model)}")
    facts.append(f"change: RMS {entry.assets.rms_change:.2f} levels, largest {entry.assets.max_change:.0f}")
    facts += [f"{key}: {_score(key, value)}" for key, value in entry.scores.items()]
    if entry.seconds is not None:
        facts.append(f"time: {entry.seconds:.2f} s")
    return "<ul>" + "".join(f"<li>{fact}</li>" for fact in facts) + "</ul>"


def _score(name: str, value: float) -> str:
    return f"{value:.3f}" if "SSIM" in name else f"{value:.2f} dB"


def _noise(detected: Detected | None) -> str:
    if detected is None:
        return ""
    level = f", sigma {detected.sigma:.1f}" if np.isfinite(detected.sigma) else ""
    return _escape(detected.kind or "not detected") + level


STYLE = """body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse}
td,th{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:middle}
td:nth-child(n+4){white-space:nowrap}
td img{max-width:160px;max-height:160px}tr.failed{background:#fde2e2}tr.unchanged{background:#fff4d6}
.pair{display:flex;gap:1em;flex-wrap:wrap}figure{margin:0 0 1em 0}figcaption{font-size:90%;color:#555}
img.crop{width:192px;height:192px;image-rendering:pixelated;margin-right:4px}"""


def _page(title: str, body: str) -> str:
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{_escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>{body}</body></html>\n")


def _escape(text: str) -> str:
    return html.escape(str(text), quote=True)


def _write_text(path: Path, text: str) -> None:
    write_atomically(path, lambda file: file.write(text.encode("utf-8")))


def describe_for_run(model_name: str | None, noise_kind: str | None) -> Describe:
    """What `denoise run` found in an input and which model cleaned it: its own model, or the shipped model for the
    kind of noise given or detected, chosen by the same function as the run's (shipped.choose_model)."""
    from denoise.inference.shipped import choose_model
    from denoise.noise.detection import image_sigma

    def describe(pixels: np.ndarray) -> Detected:
        sigma = image_sigma(pixels)
        if model_name is not None:
            return Detected("", sigma, model_name)
        kind, path = choose_model(pixels, noise_kind)
        return Detected(kind, sigma, path.stem if path else "none: too little noise")

    return describe

"""What `run` and `noise` share: a progress bar counting megapixels, and the end of a run (summary, report, exit).

Counting pixels rather than files keeps the ETA right from the first image on folders of mixed sizes.
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from pathlib import Path

import typer

from denoise.cli.common import EXIT_FAILED_FILES, EXIT_INTERRUPTED, fail
from denoise.errors import DenoiseError


def unfinished(jobs):
    from denoise.batch.runner import RunSummary

    return RunSummary.unfinished(jobs)


def run_with_progress(jobs, sizes, work, quiet: bool, label: str):
    """Run `work(progress_callback, sizes)` under a bar counting megapixels; failures are printed as they happen.

    Counting pixels rather than files keeps the ETA right from the first image on folders of mixed sizes. Ctrl-C
    ends the work early; the summary then lists the files not cleaned as unfinished.
    """
    from tqdm import tqdm

    from denoise.batch.runner import Interrupted

    megapixels = {job.source: size.pixels / 1e6 for job, size in zip(jobs, sizes)}
    total = sum(megapixels.values())
    digits = 1 if total >= 10 else 3  # a folder of thumbnails would otherwise show 0.0/0.0 MP
    bar_format = (
        f"{{desc}}: {{percentage:3.0f}}%|{{bar}}| {{n:.{digits}f}}/{{total:.{digits}f}} MP "
        "[{elapsed}<{remaining}, {rate_noinv_fmt}{postfix}]"
    )
    with tqdm(total=total, unit="MP", desc=label, disable=quiet, file=sys.stderr, bar_format=bar_format) as bar:
        finished = 0

        def progress(result):
            nonlocal finished
            finished += 1
            bar.set_postfix_str(f"{finished}/{len(jobs)} files", refresh=False)
            bar.update(megapixels.get(result.source, 0.0))
            if result.status == "failed":
                # Reasons usually name the file already; name it when one does not.
                named = str(result.source) in result.reason
                bar.write(f"failed: {result.reason if named else f'{result.source}: {result.reason}'}", file=sys.stderr)

        try:
            return work(progress, sizes)
        except Interrupted as stop:
            return stop.summary
        except KeyboardInterrupt:
            return unfinished(jobs)


def finish_run(summary, report: Path | None, jobs, started: float, cleaning: bool = True) -> None:
    """Print the summary line (and the files skipped for their type, and when cleaning those left unchanged), write
    the report, exit with the right code."""
    from denoise.batch.runner import TYPE_NOT_READ

    _list_unread(summary.skipped(TYPE_NOT_READ))
    if cleaning:
        _list_unchanged(summary.unchanged)
    typer.echo(_summary_line(summary, jobs, time.monotonic() - started, cleaning), err=True)
    if summary.interrupted:
        typer.echo(
            "interrupted: files already written are whole; run the same command again to finish the rest", err=True
        )
    write_report(summary, report)
    if summary.interrupted:
        raise typer.Exit(EXIT_INTERRUPTED)
    if not summary.ok:
        raise typer.Exit(EXIT_FAILED_FILES)


def _summary_line(summary, jobs, seconds: float, cleaning: bool = True) -> str:
    """E.g. '5 done, 2 skipped (2 outputs exist, --overwrite redoes them), 0 failed in 12.3 s (1.42 MP/s); outputs
    under DIR'."""
    from denoise.batch.runner import CLEANED_IN_PLACE, OUTPUT_EXISTS, TYPE_NOT_READ

    counts = summary.counts
    why = []
    if summary.skipped(OUTPUT_EXISTS):
        why.append(f"{len(summary.skipped(OUTPUT_EXISTS))} outputs exist, --overwrite redoes them")
    if summary.skipped(CLEANED_IN_PLACE):
        why.append(f"{len(summary.skipped(CLEANED_IN_PLACE))} already cleaned in place, --overwrite cleans them again")
    unread = summary.skipped(TYPE_NOT_READ)
    if unread:
        why.append(f"{len(unread)} of types denoise does not read: {by_type(unread)}; {convert_hint(unread)}")
    because = f" ({'; '.join(why)})" if why else ""
    unchanged = len(summary.unchanged) if cleaning else 0
    done = f"{counts['done']} done" + (f" ({unchanged} of them unchanged: no noise found)" if unchanged else "")
    line = f"{done}, {counts['skipped']} skipped{because}, {counts['failed']} failed"
    if summary.interrupted:
        line = f"interrupted: {line}, {counts['unfinished']} unfinished"
    rate = summary.pixels_done / 1e6 / seconds if seconds > 0 else 0.0
    line += f" in {seconds:.1f} s ({rate:.3g} MP/s)"
    return line + (f"; outputs under {common_output(jobs)}" if jobs else "")


def by_type(items) -> str:
    """'2 .heic, 1 .nef' from jobs or results whose source files denoise does not read."""
    counts = Counter(item.source.suffix.lower() for item in items)
    return ", ".join(f"{count} {suffix}" for suffix, count in counts.most_common())


def convert_hint(items) -> str:
    from denoise.batch.plan import UNREAD_TYPES

    raw = any(UNREAD_TYPES.get(item.source.suffix.lower(), ("",))[0] == "a camera raw file" for item in items)
    return f"{'develop or ' if raw else ''}convert them to PNG, JPEG or TIFF first"


def _list_unread(results, shown: int = 5) -> None:
    # Named one by one, up to a few: a folder of RAW+JPEG pairs would otherwise print a line per photo.
    for result in results[:shown]:
        typer.echo(f"skipped: {result.reason}", err=True)
    if len(results) > shown:
        typer.echo(
            f"skipped: {len(results) - shown} more of types denoise does not read (--report lists them all)", err=True
        )


def _list_unchanged(results, shown: int = 5) -> None:
    """Name the files written with every pixel as it was, so a photo the model saw no noise in is not taken as
    cleaned."""
    for result in results[:shown]:
        typer.echo(
            f"unchanged: {result.source}: no noise found, its pixels are as they were (if it is noisy, "
            "choose the model with --noise)",
            err=True,
        )
    if len(results) > shown:
        typer.echo(f"unchanged: {len(results) - shown} more (--report lists them all)", err=True)


def write_report(summary, report: Path | None) -> None:
    if report is not None:
        try:
            summary.write_report(report)
        except DenoiseError as exc:
            fail(str(exc))


def common_output(jobs) -> Path:
    return Path(os.path.commonpath([str(job.output.parent) for job in jobs]))

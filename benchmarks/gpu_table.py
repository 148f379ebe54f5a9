"""Sections of the GPU check's markdown report, and its progress lines (standard library only)."""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass, field
from typing import Literal

Verdict = Literal["pass", "fail", "info", "skipped", "error"]
_START = time.perf_counter()


def progress(message: str) -> None:
    """Print one progress line stamped with the seconds since the check started."""
    print(f"[{time.perf_counter() - _START:7.1f} s] {message}", flush=True)


def elapsed() -> float:
    """Seconds since the check started."""
    return time.perf_counter() - _START


@dataclass
class Section:
    """One part of the report: a titled table with notes and a verdict.

    Attributes:
        key: The part's letter (``a`` .. ``e``, ``t``).
        title: One line saying what was measured.
        columns: Table header.
        rows: Table cells, already formatted.
        notes: Lines printed under the table (sizes, criteria, what ran where).
        verdict: ``pass``/``fail`` against the part's target, ``info`` when it has none
            on this device, ``skipped`` or ``error``.
        seconds: Wall time the part took.
    """

    key: str
    title: str
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    verdict: Verdict = "info"
    seconds: float = 0.0

    def markdown(self) -> str:
        """The section as markdown: heading, verdict line, table, notes."""
        lines = [
            f"### ({self.key}) {self.title}",
            "",
            f"**{self.verdict}** in {self.seconds:.1f} s",
        ]
        if self.columns:
            lines += ["", _row(self.columns), _row(["---"] * len(self.columns))]
            lines += [_row(row) for row in self.rows]
        if self.notes:
            lines += [""] + [f"- {note}" for note in self.notes]
        return "\n".join(lines)


def overall(sections: list[Section]) -> Verdict:
    """``fail`` if any part failed or broke, else ``pass`` if any passed, else ``info``."""
    verdicts = {s.verdict for s in sections}
    if verdicts & {"fail", "error"}:
        return "fail"
    return "pass" if "pass" in verdicts else "info"


def document(header: list[str], sections: list[Section]) -> str:
    """The whole report: header lines, a summary table of the parts, then each part."""
    summary = [_row(["part", "what", "verdict", "seconds"]), _row(["---"] * 4)]
    summary += [_row([s.key, s.title, s.verdict, f"{s.seconds:.1f}"]) for s in sections]
    parts = [s.markdown() for s in sections]
    head = [*header, "", f"Overall: **{overall(sections)}**", "", *summary]
    return "\n\n".join(["\n".join(head), *parts]) + "\n"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "/").replace("\n", " ") for cell in cells) + " |"


def nvidia_smi(*args: str) -> list[list[str]] | None:
    """Rows of ``nvidia-smi ARGS --format=csv,noheader,nounits``; None without the tool."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        done = subprocess.run(
            ["nvidia-smi", *args, "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=20, check=True,
        )  # fmt: skip
    except (subprocess.SubprocessError, OSError):
        return None
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    return [[cell.strip() for cell in line.split(",")] for line in lines]

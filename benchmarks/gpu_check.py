"""The GPU check (issue 16): one command, one markdown report, every CUDA path exercised.

Parts, each a section of the report with a verdict against its target:

- (a) every registered cell forward and backward on the device (float32) against a
  float64 copy on CPU, with the code path taken on each side;
- (b) the trainer's samples/s over a bare hand-written loop's (target >= 0.95);
- (c) a real study through ``cellsearch worker --gpus 0 --per-gpu K``, K = 1, 4, 8:
  trials per minute and GPU memory per trial (target: K=8 >= 4 x K=1);
- (d) minGRU/minLSTM: log-space scan time over sequential loop time, T = 512, 2048, 8192
  (target < 0.2 from T = 2048 on CUDA);
- (e) a trial out of GPU memory ends as an ``error`` outcome and the worker goes on;
- (t) the test suite's CUDA tests (``pytest -m cuda``).

(a), (b) and (d) need torch alone. (c), (e) and (t) need the service's packages (Optuna,
SQLAlchemy, Alembic, pydantic-settings...); where those are missing the parts are
skipped with a line saying so (benchmarks/gpu_wheels.sh fetches them as wheels).

Run from the repository root (``make gpu-check`` sets PYTHONPATH and PYTHONUNBUFFERED)::

    python benchmarks/gpu_check.py                          # CUDA, full sizes, all parts
    python benchmarks/gpu_check.py --device cpu --quick     # a rehearsal on CPU
    python benchmarks/gpu_check.py --parts a,d --out report.md

The report goes to ``--out`` (default ``$OUT/gpu_check.md`` when OUT is set, else
``./gpu_check.md``), rewritten after every part, and to standard output at the end; the
worker and pytest logs of parts c, e and t to ``--logs`` (default ``$OUT/logs``). Parts
not started after ``--budget-s`` seconds (330) are skipped, so that the whole check stays
within about six minutes on one GPU (it needs about four). Exit status 1 when a part
fails or breaks.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import os
import platform
import re
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path

import torch

from gpu_kernels import float32_defaults, part_a, part_d
from gpu_table import Section, document, elapsed, nvidia_smi, overall, progress
from gpu_trainer import part_b

ROOT = Path(__file__).resolve().parent.parent
WHEELS = "carry the wheels of benchmarks/gpu_wheels.sh (benchmarks/GPU.md)"
SERVICE_MODULES = ("optuna", "sqlalchemy", "alembic", "pydantic", "pydantic_settings")
TITLES = {
    "a": "cells forward+backward vs float64 CPU reference",
    "b": "trainer samples/s vs bare hand-written loop",
    "c": "study through `cellsearch worker --gpus 0 --per-gpu K`",
    "d": "minGRU/minLSTM log-space scan vs sequential loop",
    "e": "out-of-memory trial -> error outcome, worker goes on",
    "t": "CUDA tests of the suite (pytest -m cuda)",
}
Part = Callable[[torch.device, bool, Path], Section]


def missing_service_modules(names: tuple[str, ...] = SERVICE_MODULES) -> list[str]:
    """The service's packages (or ``names``) that cannot be imported here."""
    return [name for name in names if not _importable(name)]


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:  # a finder refused it (benchmarks/gpu_imports.py's blocker)
        return False


def service_part(key: str) -> Part:
    """Part c or e, or a runner that reports it skipped when the packages are missing."""

    def run(device: torch.device, quick: bool, folder: Path) -> Section:
        missing = missing_service_modules()
        if missing:
            return skipped(key, f"missing packages: {', '.join(missing)}; {WHEELS}")
        import gpu_workers  # needs the service's packages

        part: Part = gpu_workers.part_c if key == "c" else gpu_workers.part_e
        return part(device, quick, folder / key)

    return run


def skipped(key: str, why: str) -> Section:
    """A section that says why its part did not run."""
    return Section(key, TITLES[key], notes=[f"skipped: {why}"], verdict="skipped")


def part_t(device: torch.device, quick: bool, folder: Path) -> Section:
    """Run the test files that hold ``cuda``-marked tests with ``-m cuda``."""
    missing = missing_service_modules((*SERVICE_MODULES, "pytest"))
    if missing:
        return skipped("t", f"missing packages: {', '.join(missing)}; {WHEELS}")
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").rglob("test_*.py")
                   if "mark.cuda" in p.read_text())  # fmt: skip
    command = [sys.executable, "-m", "pytest", "-m", "cuda", "-q", "-p", "no:cacheprovider", *files]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    (folder / "t").mkdir(parents=True, exist_ok=True)
    (folder / "t" / "pytest.log").write_text(done.stdout + done.stderr)
    lines = done.stdout.splitlines()
    counts = [line.strip("= ") for line in lines if re.search(r"\d+ (passed|failed|skip)", line)]
    summary = counts[-1] if counts else "no summary"
    section = Section("t", TITLES["t"], columns=["command", "exit", "summary"])
    section.rows.append([f"pytest -m cuda ({len(files)} files)", str(done.returncode), summary])
    section.notes += [line for line in lines if line.startswith(("FAILED", "ERROR"))][:20]
    section.notes.append("files: " + ", ".join(files))
    if done.returncode != 0:
        section.notes += (done.stdout + done.stderr).splitlines()[-15:]
    ran = re.search(r"(\d+) passed", summary) is not None
    if device.type == "cuda":
        section.verdict = "pass" if done.returncode == 0 and ran else "fail"
    else:
        section.verdict = "fail" if done.returncode != 0 else "info"
    return section


PARTS: dict[str, Part] = {
    "a": lambda device, quick, _: part_a(device, quick),
    "b": lambda device, quick, _: part_b(device, quick),
    "c": service_part("c"),
    "d": lambda device, quick, _: part_d(device, quick),
    "e": service_part("e"),
    "t": part_t,
}


def environment(device: torch.device, argv: list[str]) -> list[str]:
    """The report's header: date, device, versions, settings, command."""
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        gpu = (
            f"{props.name}, {props.total_memory / 2**30:.0f} GiB, {props.multi_processor_count} SMs"
        )
    else:
        gpu = f"no GPU: {platform.processor() or platform.machine()} CPU"
    driver = (nvidia_smi("--query-gpu=driver_version") or [["n/a"]])[0][0]
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else "n/a"
    return [
        f"# GPU check, {now}",
        "",
        f"- device: `{device}`, {gpu}",
        f"- torch {torch.__version__}, CUDA {torch.version.cuda or 'n/a'} (torch build), "
        f"cuDNN {cudnn}, driver {driver}",
        f"- Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"{torch.get_num_threads()} torch threads; float32 defaults: {float32_defaults()}",
        f"- command: `benchmarks/gpu_check.py {' '.join(argv)}`",
    ]


def save_logs(folder: Path, logs: Path | None) -> None:
    """Concatenate the ``*.log`` files under ``folder`` into ``logs/<folder name>.log``."""
    files = sorted(folder.rglob("*.log")) if folder.is_dir() else []
    if logs is None or not files:
        return
    logs.mkdir(parents=True, exist_ok=True)
    parts = [f"==== {f.relative_to(folder)}\n{f.read_text(errors='replace')}" for f in files]
    (logs / f"{folder.name}.log").write_text("\n".join(parts))


def run_part(
    key: str, device: torch.device, quick: bool, folder: Path, logs: Path | None = None
) -> Section:
    """One part, timed; an exception becomes an ``error`` section with its traceback tail.

    The logs the part left under ``folder/key`` (worker processes, pytest) are copied
    into ``logs`` when it is given.
    """
    progress(f"part {key}: {TITLES[key]}")
    start = elapsed()
    try:
        section = PARTS[key](device, quick, folder)
    except Exception as exc:
        tail = traceback.format_exc().strip().splitlines()[-8:]
        section = Section(
            key, TITLES[key], verdict="error", notes=[f"{type(exc).__name__}: {exc}", *tail]
        )
    section.seconds = elapsed() - start
    save_logs(folder / key, logs)
    if device.type == "cuda":
        torch.cuda.empty_cache()  # leave the GPU to the next part's processes
    progress(f"part {key}: {section.verdict} in {section.seconds:.1f} s")
    return section


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line, checked: ``parts`` becomes a list of known part keys."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"],
                        default="cuda" if torch.cuda.is_available() else "cpu")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="small sizes (a CPU rehearsal)")
    parser.add_argument("--parts", default="a,b,c,d,e,t", help="comma-separated, of a,b,c,d,e,t")
    parser.add_argument("--out", type=Path, default=None, help="markdown report (see above)")
    parser.add_argument("--logs", type=Path, default=None,
                        help="folder for the worker and pytest logs (default $OUT/logs if OUT "
                        "is set, else none)")  # fmt: skip
    parser.add_argument("--budget-s", type=float, default=330.0,
                        help="seconds after which parts not yet started are skipped")  # fmt: skip
    args = parser.parse_args(argv)
    args.parts = [key.strip() for key in args.parts.split(",") if key.strip()]
    unknown = [key for key in args.parts if key not in PARTS]
    if unknown:
        parser.error(f"unknown parts {unknown}; choose from {','.join(PARTS)}")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda, but CUDA is not available here (use --device cpu --quick)")
    out = Path(os.environ["OUT"]) if os.environ.get("OUT") else None
    args.out = args.out or (out or Path()) / "gpu_check.md"
    args.logs = args.logs or (out / "logs" if out else None)
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the selected parts; return 1 if any failed or broke, else 0."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    device = torch.device("cuda:0" if args.device == "cuda" else "cpu")
    header = environment(device, argv)
    progress(f"GPU check on {device}: parts {','.join(args.parts)}, report to {args.out}")
    sections: list[Section] = []
    shm = Path("/dev/shm")  # SQLite's fsyncs cost nothing there
    scratch = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
    with tempfile.TemporaryDirectory(prefix="gpu-check-", dir=scratch) as tmp:
        for key in args.parts:
            if elapsed() > args.budget_s:
                sections.append(skipped(key, f"out of time (--budget-s {args.budget_s:g})"))
            else:
                sections.append(run_part(key, device, args.quick, Path(tmp), args.logs))
            args.out.write_text(document(header, sections))
    header.append(f"- total {elapsed():.0f} s")
    text = document(header, sections)
    args.out.write_text(text)
    print(text, flush=True)
    progress(f"overall {overall(sections)}; report written to {args.out}")
    return 1 if overall(sections) == "fail" else 0


if __name__ == "__main__":
    sys.exit(main())

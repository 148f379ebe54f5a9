"""Reading the bundled data sets' files from the installed packages (numpy only).

The files are read directly from the packages that ship them (located without importing
them), so neither aeon's numba nor pandas is loaded; a missing package raises
:class:`~cellsearch.search.errors.DatasetError` naming the extra that installs it.
Chorale parsing is slow, so the processed piano rolls are cached on first use
(:func:`cache_dir`), safely with many processes at once, on one machine or on a shared
volume (:func:`chorale_rolls`).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import logging
import math
import os
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cellsearch.search.errors import DatasetError

log = logging.getLogger(__name__)
EXTRA_HINT = "pip install 'cellsearch[datasets]'"
PIANO_KEYS = 88
LOWEST_KEY = 21  # MIDI number of A0


@dataclass(frozen=True)
class UcrInfo:
    """Known facts of a UCR/UEA archive (no data loaded)."""

    n_train: int
    n_test: int
    n_classes: int
    n_features: int
    max_length: int
    variable_length: bool


UCR_DATASETS: dict[str, UcrInfo] = {
    "JapaneseVowels": UcrInfo(270, 370, 9, 12, 29, True),
    "BasicMotions": UcrInfo(40, 40, 4, 6, 100, False),
    "GunPoint": UcrInfo(50, 150, 2, 1, 150, False),
    "ItalyPowerDemand": UcrInfo(67, 1029, 2, 1, 24, False),
    "ArrowHead": UcrInfo(36, 175, 3, 1, 251, False),
}
SERIES_LENGTHS = {"airline": 144, "sunspots": 309}
"""Points in each forecasting series (monthly 1949-1960; yearly 1700-2008)."""
CHORALES_N_PIECES = 350
"""Distinct chorales of music21's Riemenschneider list in its corpus (music21 10.5)."""
CHORALES_MAX_STEPS = 193
"""Quarter-note steps of the longest chorale (inputs are one step shorter)."""
SERIES_FILES = {
    "airline": ("aeon", "datasets", "data", "Airline", "Airline.csv"),
    "sunspots": ("statsmodels", "datasets", "sunspots", "sunspots.csv"),
}
"""Where each forecasting series lies: the package, then the path inside it."""


# --- locating the packages' files ----------------------------------------------------------


def _package_dir(package: str) -> Path:
    """The installed package's folder, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError(f"this data set needs the package {package!r}: {EXTRA_HINT}")
    return Path(next(iter(spec.submodule_search_locations)))


def _data_file(package: str, *parts: str) -> Path:
    path = _package_dir(package).joinpath(*parts)
    if not path.is_file():
        raise DatasetError(f"{'/'.join(parts)} is missing from the installed {package!r} package")
    return path


# --- UCR/UEA ------------------------------------------------------------------------------


def read_ts(path: Path) -> tuple[list[np.ndarray], list[str], list[str]]:
    """Read a ``.ts`` file: series ``(L, F)``, their labels, and the declared class labels."""
    series, labels, classes = [], [], []
    in_data = False
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            words = line.split()
            if words[0].lower() == "@classlabel" and len(words) > 2:
                classes = words[2:]
            in_data = words[0].lower() == "@data"
            continue
        *dims, label = line.split(":")
        columns = [np.array(d.split(","), dtype=np.float64) for d in dims]
        series.append(np.stack(columns, axis=1))  # (L, F)
        labels.append(label.strip())
    return series, labels, classes


def load_ucr(name: str) -> dict[str, tuple[list[np.ndarray], np.ndarray]]:
    """The archive's train and test series with integer labels (the header's class order)."""
    if name not in UCR_DATASETS:
        raise DatasetError(f"unknown UCR data set {name!r}; bundled: {', '.join(UCR_DATASETS)}")
    out = {}
    for split in ("train", "test"):
        path = _data_file("aeon", "datasets", "data", name, f"{name}_{split.upper()}.ts")
        series, labels, classes = read_ts(path)
        index = {c: i for i, c in enumerate(classes or sorted(set(labels)))}
        out[split] = (series, np.array([index[c] for c in labels], dtype=np.int64))
    return out


def load_series(name: str) -> np.ndarray:
    """A forecasting series as float64 ``(L, 1)``."""
    if name not in SERIES_FILES:
        raise DatasetError(f"unknown series {name!r}; bundled: {', '.join(SERIES_LENGTHS)}")
    path = _data_file(*SERIES_FILES[name])
    values = np.loadtxt(path, delimiter=",", skiprows=1, usecols=1, dtype=np.float64)
    return values[:, None]


# --- chorales -----------------------------------------------------------------------------

_SUFFIX_PREFERENCE = {".mxl": 0, ".xml": 1, ".musicxml": 2, ".krn": 3}
_ROLL_VERSION = "quarter-steps-v1"
"""Changes whenever the piano-roll processing changes, so that old caches are not read."""


def cache_dir() -> Path:
    """Where processed data sets are cached: ``CELLSEARCH_CACHE_DIR`` or the user cache."""
    configured = os.environ.get("CELLSEARCH_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "cellsearch"


def chorale_paths(max_pieces: int | None = None) -> list[Path]:
    """Corpus files of the chorales in Riemenschneider order, each once."""
    if importlib.util.find_spec("music21") is None:
        raise DatasetError(f"the chorales need the package 'music21': {EXTRA_HINT}")
    from music21 import corpus
    from music21.corpus import chorales

    paths: list[Path] = []
    for name in dict.fromkeys(chorales.Iterator(returnType="filename")):
        found = corpus.getWork(name)
        candidates = found if isinstance(found, list) else [found]
        stem = name.split("/")[-1]
        exact = sorted(
            (Path(p) for p in candidates if Path(p).stem == stem or len(candidates) == 1),
            key=lambda p: _SUFFIX_PREFERENCE.get(p.suffix, len(_SUFFIX_PREFERENCE)),
        )
        if exact and exact[0] not in paths:
            paths.append(exact[0])
        if max_pieces is not None and len(paths) == max_pieces:
            break
    return paths


def piano_roll(path: Path) -> np.ndarray:
    """The keys sounding at each quarter-note beat, uint8 ``(steps, 88)``.

    Parsed from the source file every time (``forceSource``): music21 otherwise reads and
    writes a pickle of each score in its own scratch folder, shared by every process of
    the user and not written atomically, so a process could read another's half-written
    pickle (``zlib.error``). The processed rolls have their own cache.
    """
    from music21 import converter

    score = converter.parse(str(path), forceSource=True)
    roll = np.zeros((math.ceil(float(score.highestTime)), PIANO_KEYS), dtype=np.uint8)
    for note in score.flatten().notes:  # notes and chords, absolute offsets
        start = float(note.offset)
        first, stop = math.ceil(start), math.ceil(start + float(note.quarterLength))
        for pitch in note.pitches:
            key = pitch.midi - LOWEST_KEY
            if 0 <= key < PIANO_KEYS:
                roll[first:stop, key] = 1
    return roll


def _cache_key(paths: list[Path]) -> str:
    digest = hashlib.sha256(f"{_ROLL_VERSION}:{PIANO_KEYS}:{LOWEST_KEY}".encode())
    for path in paths:
        digest.update(path.name.encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:32]


def chorale_rolls(max_pieces: int | None = None) -> list[np.ndarray]:
    """Piano rolls of the chorales, parsed once and cached by a hash of the corpus files.

    Safe with any number of processes at once: the cache file is written under a unique
    temporary name and renamed into place (a reader sees the whole file or none), and the
    processes preparing the same rolls take turns through a lock file, so one parses and
    the others read its result. A cache file that cannot be read (truncated by a full disk,
    say) is parsed again and replaced.
    """
    paths = chorale_paths(max_pieces)
    target = cache_dir() / "chorales" / f"{_cache_key(paths)}.npz"
    target.parent.mkdir(parents=True, exist_ok=True)
    cached = _read_rolls(target)
    if cached is not None:
        return cached
    with _exclusive(target.with_suffix(".lock")):
        cached = _read_rolls(target)  # another process may have built it meanwhile
        if cached is not None:
            return cached
        rolls = [piano_roll(p) for p in paths]
        _write_rolls(target, rolls)
    return rolls


def _read_rolls(target: Path) -> list[np.ndarray] | None:
    """The cached rolls, or None when there is no readable cache file."""
    if not target.is_file():
        return None
    try:
        with np.load(target) as cached:
            return np.split(cached["rolls"], np.cumsum(cached["lengths"])[:-1])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        log.warning("unreadable chorale cache %s (%s); parsing again", target, exc)
        return None


def _write_rolls(target: Path, rolls: list[np.ndarray]) -> None:
    """Write the cache file under a unique temporary name, then rename it into place."""
    # unique across hosts sharing the volume (a pid is not)
    fd, partial = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            lengths = np.array([len(r) for r in rolls])
            np.savez_compressed(handle, rolls=np.concatenate(rolls), lengths=lengths)
        os.replace(partial, target)  # atomic: concurrent readers never see a partial file
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(partial)
        raise


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_path`` (POSIX ``flock``; elsewhere no lock, and the
    atomic rename alone keeps the cache whole)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)

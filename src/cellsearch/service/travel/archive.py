"""Writing a study archive with its ``MANIFEST``, and unpacking one without trusting it.

:class:`ArchiveWriter` streams each file into the zip while it hashes it, and writes the
``MANIFEST`` (:class:`~.layout.Manifest`) last. :func:`unpack` refuses an archive whole
(:class:`~cellsearch.service.errors.InvalidArchive`) before it writes anything outside
its own temporary folder, and refuses, in this order:

1. a file that is not a zip archive, or a truncated one (its central directory is at
   the end);
2. a name outside the layout (:func:`~.layout.allowed`: no folder, no ``..``, no
   absolute path), a name given twice, an encrypted or oddly compressed file, too many
   files;
3. declared sizes past the limits (:class:`~.settings.TravelSettings`): the unpacked
   total, and each file's ratio of unpacked to packed size (a zip bomb's is in the
   thousands), all read from the zip's directory before a byte is decompressed;
4. a ``MANIFEST`` that is missing, unreadable, of a newer layout, or that does not list
   exactly the archive's files with their sizes;
5. a file whose bytes do not match the manifest's SHA-256, or whose CRC or length is
   not what the zip says (a damaged or tampered file): each file is hashed while it is
   unpacked, never unpacking more than its declared size.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from pydantic import ValidationError

from cellsearch.service.errors import InvalidArchive
from cellsearch.service.travel import layout
from cellsearch.service.travel.settings import TravelSettings

CHUNK = 1 << 20
MAX_FILES = 10_000
MAX_MANIFEST_BYTES = 16 << 20
RATIO_EXEMPT_BYTES = 1 << 20
"""Files this small are never held to the ratio (a short JSON may compress very well)."""
_COMPRESSIONS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)


class ArchiveWriter:
    """A study archive being written to ``target`` (a binary file open for writing)."""

    def __init__(self, target: IO[bytes]) -> None:
        self._zip = zipfile.ZipFile(target, "w", allowZip64=True)
        self.files: dict[str, layout.FileEntry] = {}

    def add(self, name: str, chunks: Iterable[bytes], *, compress: bool = True) -> None:
        """Add file ``name`` with the bytes of ``chunks`` (deflated unless ``compress`` is
        False: model weights and NPZ files barely compress)."""
        assert layout.allowed(name) and name not in self.files and name != layout.MANIFEST
        info = zipfile.ZipInfo(name)
        info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        digest, size = hashlib.sha256(), 0
        with self._zip.open(info, "w", force_zip64=True) as out:
            for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
        self.files[name] = layout.FileEntry(sha256=digest.hexdigest(), size=size)

    def add_bytes(self, name: str, data: bytes, *, compress: bool = True) -> None:
        """Add file ``name`` holding ``data``."""
        self.add(name, [data], compress=compress)

    def add_path(self, name: str, path: Path, *, compress: bool = True) -> None:
        """Add file ``name`` with the content of the file at ``path``."""
        with path.open("rb") as source:
            self.add(name, iter(lambda: source.read(CHUNK), b""), compress=compress)

    def close(self, **facts: Any) -> layout.Manifest:
        """Write the ``MANIFEST`` (``facts``: every field but ``files``) and finish."""
        manifest = layout.Manifest(**facts, files=self.files)
        text = manifest.model_dump_json(indent=2).encode()
        info = zipfile.ZipInfo(layout.MANIFEST)
        info.compress_type = zipfile.ZIP_DEFLATED
        self._zip.writestr(info, text)
        self._zip.close()
        return manifest


@dataclass(frozen=True)
class Unpacked:
    """An archive unpacked into ``folder``, every file checked against ``manifest``."""

    folder: Path
    manifest: layout.Manifest

    def path(self, name: str) -> Path:
        """Where file ``name`` of the archive was unpacked."""
        assert name in self.manifest.files
        return self.folder / name

    def names(self, prefix: str) -> list[str]:
        """The archive's file names that start with ``prefix``."""
        return sorted(n for n in self.manifest.files if n.startswith(prefix))


def unpack(source: IO[bytes], folder: Path, limits: TravelSettings) -> Unpacked:
    """Check and unpack the archive in ``source`` (a seekable binary file) into ``folder``.

    Raises:
        InvalidArchive: the archive is refused (see the module docstring).
    """
    size = source.seek(0, 2)
    source.seek(0)
    if size > limits.max_import_bytes:
        raise InvalidArchive(f"the archive's {size} bytes exceed this server's limit of "
                             f"{limits.max_import_bytes} (max_import_bytes)")  # fmt: skip
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        raise InvalidArchive("not a zip archive, or a truncated one") from None
    with archive:
        infos = _checked_entries(archive, limits)
        manifest = _manifest(archive, infos)
        for name, info in infos.items():
            if name != layout.MANIFEST:
                _extract(archive, info, manifest.files[name], folder / name)
    return Unpacked(folder, manifest)


def _checked_entries(
    archive: zipfile.ZipFile, limits: TravelSettings
) -> dict[str, zipfile.ZipInfo]:
    """The archive's entries by name, once names, count, flags and sizes pass."""
    infos = archive.infolist()
    if len(infos) > MAX_FILES:
        raise InvalidArchive(f"the archive holds {len(infos)} files; at most {MAX_FILES}")
    found: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        name = info.filename
        if not layout.allowed(name):
            raise InvalidArchive(f"{name!r} is not a file of a study archive")
        if name in found:
            raise InvalidArchive(f"{name!r} appears twice in the archive")
        if info.flag_bits & 0x1 or info.compress_type not in _COMPRESSIONS:
            raise InvalidArchive(f"{name!r} is encrypted or compressed in an unknown way")
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > RATIO_EXEMPT_BYTES and ratio > limits.max_import_ratio:
            raise InvalidArchive(
                f"{name!r} would unpack {ratio:.0f} times its packed size; this server allows "
                f"{limits.max_import_ratio:g} (max_import_ratio): refused as a zip bomb"
            )
        found[name] = info
    total = sum(i.file_size for i in infos)
    if total > limits.max_import_expanded_bytes:
        raise InvalidArchive(
            f"the archive would unpack to {total} bytes; this server's limit is "
            f"{limits.max_import_expanded_bytes} (max_import_expanded_bytes)"
        )
    return found


def _manifest(archive: zipfile.ZipFile, infos: dict[str, zipfile.ZipInfo]) -> layout.Manifest:
    """The archive's manifest, once it lists exactly the archive's files and sizes."""
    info = infos.get(layout.MANIFEST)
    if info is None:
        raise InvalidArchive(f"the archive has no {layout.MANIFEST}: it is not a study archive")
    if info.file_size > MAX_MANIFEST_BYTES:
        raise InvalidArchive(f"its {layout.MANIFEST} is larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        data = json.loads(_read_all(archive, info))
        version = data.get("format_version") if isinstance(data, dict) else None
        if isinstance(version, int) and version > layout.FORMAT_VERSION:
            raise InvalidArchive(
                f"the archive's layout is version {version}, newer than this server reads "
                f"({layout.FORMAT_VERSION}): upgrade cellsearch here"
            )
        manifest = layout.Manifest.model_validate(data)
    except (ValueError, ValidationError) as exc:
        raise InvalidArchive(f"its {layout.MANIFEST} is not valid: {_first_line(exc)}") from None
    listed, present = set(manifest.files), set(infos) - {layout.MANIFEST}
    if listed != present:
        odd = sorted(listed ^ present)
        raise InvalidArchive(f"the {layout.MANIFEST} and the archive disagree on {odd[:5]}")
    missing = [n for n in layout.REQUIRED if n not in present]
    if missing:
        raise InvalidArchive(f"the archive lacks {', '.join(missing)}")
    for name in present:
        if manifest.files[name].size != infos[name].file_size:
            raise InvalidArchive(f"{name!r}: its size is not the one the {layout.MANIFEST} states")
    return manifest


def _read_all(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    try:
        with archive.open(info) as member:
            return member.read(info.file_size + 1)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise InvalidArchive(f"{info.filename!r} is damaged ({exc})") from None


def _extract(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, entry: layout.FileEntry, target: Path
) -> None:
    """Unpack one file, hashing it, never past its declared size."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest, seen = hashlib.sha256(), 0
    try:
        with archive.open(info) as member, target.open("wb") as out:
            while chunk := member.read(CHUNK):
                seen += len(chunk)
                if seen > info.file_size:
                    raise InvalidArchive(f"{info.filename!r} unpacks past its declared size")
                digest.update(chunk)
                out.write(chunk)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise InvalidArchive(f"{info.filename!r} is damaged ({exc})") from None
    if seen != entry.size or digest.hexdigest() != entry.sha256:
        raise InvalidArchive(
            f"{info.filename!r} does not match the checksum its {layout.MANIFEST} states: "
            "the archive was changed or damaged"
        )


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__

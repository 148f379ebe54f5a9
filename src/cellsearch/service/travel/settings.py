"""The limits on a study archive that is imported (read as part of
:class:`cellsearch.service.settings.Settings`)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class TravelSettings(BaseModel):
    """How large a study archive ``POST /studies/import`` accepts, packed and unpacked.

    The packed size is counted as the upload arrives (a 413 past it); the unpacked sizes
    are the archive's own declarations, checked before a byte is unpacked (and held to
    while unpacking), so that a zip bomb is refused without being expanded.
    """

    max_import_bytes: int = Field(
        default=2 << 30,
        ge=1024,
        description="Largest study archive an import accepts (its size as uploaded).",
    )
    max_import_expanded_bytes: int = Field(
        default=8 << 30,
        ge=1024,
        description="Most bytes a study archive may unpack to (the sum of its files' sizes).",
    )
    max_import_ratio: float = Field(
        default=100.0,
        ge=1.0,
        description="Largest ratio of a file's unpacked to packed size in a study archive "
        "(files under 1 MiB are exempt); a zip bomb's is in the thousands.",
    )

"""The error bodies of the API and their declarations in OpenAPI.

Every error is ``{"detail": ...}``: a sentence for 401, 403, 404, 409, 413 and 503, and a
list of ``{loc, msg, type}`` (one per invalid field) for 422, whatever was invalid (a
spec, a query, an upload). Routes declare the statuses they can answer with
:func:`errors`, so that a client generated from the OpenAPI document knows each one.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorOut(BaseModel):
    """An error: what went wrong, in words."""

    detail: str


class FieldErrorOut(BaseModel):
    """One invalid field: where (``loc``), what is wrong (``msg``) and its kind (``type``)."""

    loc: list[str | int] = Field(
        description="Path of the field: 'body', 'query', 'path' or 'header' first."
    )
    msg: str
    type: str


class ValidationErrorOut(BaseModel):
    """A request that is not valid: one entry per invalid field."""

    detail: list[FieldErrorOut]


DESCRIPTIONS = {
    401: "No API key, or an unknown or revoked one (keys are required on this server).",
    403: "The key's role may not do this, or a state-changing request came from another site.",
    404: "No such resource.",
    409: "Conflicts with the current state (a name taken, a transition not allowed).",
    413: "The request body exceeds this server's size limit.",
    422: "The request is not valid; each entry names a field and the reason.",
    503: "The database is unavailable; try again.",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` declaration of the error statuses ``codes``."""
    return {
        code: {
            "model": ValidationErrorOut if code == 422 else ErrorOut,
            "description": DESCRIPTIONS[code],
        }
        for code in codes
    }


def field_errors(raw: list[Any]) -> list[dict[str, Any]]:
    """FastAPI's validation errors as ``{loc, msg, type}``: no echo of the input (which may
    be huge, or hold values JSON cannot carry, such as NaN or a lone surrogate)."""
    return [
        {
            "loc": [p if isinstance(p, int) else str(p) for p in e.get("loc", ())],
            "msg": str(e.get("msg", "invalid")).removeprefix("Value error, "),
            "type": str(e.get("type", "value_error")),
        }
        for e in raw
    ]

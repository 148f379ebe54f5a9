"""Reading a report that a newer server wrote: fields this client does not know are dropped.

The report models (:mod:`cellsearch.search.report.model`) forbid unknown fields, which is
right for the server (a typo in the builder fails its tests) and wrong for a client
released before the server: a field added in a compatible release (the same
``schema_version``) would make every older client refuse every report. So the client
walks the JSON along the model's fields, drops what the model does not name (warning
once per kind of report, naming the fields), and validates the rest strictly: a field
the model needs and the JSON lacks is still an error.
"""

from __future__ import annotations

import types
import warnings
from typing import Any, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from cellsearch.client.errors import UnreadableResponse

M = TypeVar("M", bound=BaseModel)
_warned: set[str] = set()


def parse_lenient(model: type[M], data: Any) -> M:
    """``model`` validated from ``data`` without the fields ``model`` does not know.

    Raises:
        UnreadableResponse: what is left does not validate (a field missing, another
            schema version).
    """
    dropped: list[str] = []
    known = known_fields(model, data, "", dropped)
    if dropped and model.__name__ not in _warned:
        _warned.add(model.__name__)
        shown = ", ".join(dropped[:5]) + (
            f" and {len(dropped) - 5} more" if len(dropped) > 5 else ""
        )
        warnings.warn(
            f"the server's {model.__name__} has fields this client does not read ({shown}); "
            "a newer cellsearch reads them",
            stacklevel=3,
        )
    try:
        return model.model_validate(known)
    except ValidationError as exc:
        version = data.get("schema_version") if isinstance(data, dict) else None
        raise UnreadableResponse(
            f"the server's {model.__name__} (schema version {version}) does not have the "
            f"shape this client reads: {exc}"
        ) from None


def known_fields(model: type[BaseModel], data: Any, path: str, dropped: list[str]) -> Any:
    """``data`` (a JSON object for ``model``) with the keys ``model`` does not name removed,
    at every depth; the removed keys' paths are appended to ``dropped``."""
    if not isinstance(data, dict):
        return data
    kept: dict[str, Any] = {}
    for key, value in data.items():
        field = model.model_fields.get(key)
        if field is None:
            dropped.append(f"{path}{key}")
            continue
        kept[key] = _prune(field.annotation, value, f"{path}{key}.", dropped)
    return kept


def _prune(annotation: Any, value: Any, path: str, dropped: list[str]) -> Any:
    """``value`` of a field typed ``annotation``, pruned where it holds models."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return known_fields(annotation, value, path, dropped)
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, types.UnionType):
        models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
        if len(models) == 1 and isinstance(value, dict):
            return known_fields(models[0], value, path, dropped)
        inner = [a for a in args if a is not type(None)]
        return _prune(inner[0], value, path, dropped) if len(inner) == 1 else value
    if origin is list and isinstance(value, list) and args:
        return [_prune(args[0], v, f"{path}{i}.", dropped) for i, v in enumerate(value)]
    if origin is dict and isinstance(value, dict) and len(args) == 2:
        return {k: _prune(args[1], v, f"{path}{k}.", dropped) for k, v in value.items()}
    return value

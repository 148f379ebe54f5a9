"""Study and suite specs as the client takes them: a dict, a YAML or JSON file, or a model.

The server validates every spec (``POST /studies`` answers 422 naming each invalid
field), so the client only reads files and turns a model into its JSON: it never needs
the spec's model, which imports the task registry (numpy).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Protocol

import yaml

from cellsearch.client.errors import LocalFileError


class _Dumpable(Protocol):
    """A pydantic model (``StudySpec``, a suite spec), as far as the client uses one."""

    def model_dump(self, *, mode: str = ..., exclude_unset: bool = ...) -> dict[str, Any]: ...


SpecLike = dict[str, Any] | str | os.PathLike[str] | _Dumpable
"""A spec: a dict, the path of a YAML or JSON file, or a pydantic model of one."""


class _SpecLoader(yaml.SafeLoader):
    """YAML 1.1 reads ``1e-4`` (no dot) as a string; in a spec it is a number, as in
    YAML 1.2 and JSON (the API takes no string for a number)."""


_SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def load_spec(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a spec file (YAML, of which JSON is a subset).

    Raises:
        LocalFileError: the file cannot be read or parsed, or holds no mapping.
    """
    path = Path(path)
    try:
        data = yaml.load(path.read_text(), Loader=_SpecLoader)
    except (OSError, yaml.YAMLError) as exc:
        raise LocalFileError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise LocalFileError(f"{path}: a spec must be a mapping (name, task, space, budget...)")
    return data


def spec_json(spec: SpecLike) -> dict[str, Any]:
    """The JSON body of ``spec``: a dict as it is, a file read, a model dumped.

    Raises:
        LocalFileError: a path that cannot be read, or holds no mapping.
        TypeError: ``spec`` is none of these.
    """
    if isinstance(spec, dict):
        return spec
    if isinstance(spec, str | os.PathLike):
        return load_spec(spec)
    if hasattr(spec, "model_dump"):
        # what was set, as JSON: the server fills in its own defaults (and limits)
        return spec.model_dump(mode="json", exclude_unset=True)
    raise TypeError(f"a spec is a dict, a file path or a pydantic model, not {type(spec)!r}")

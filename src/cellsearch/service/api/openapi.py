"""The OpenAPI document as this server behaves right now.

FastAPI's document is built once from the routes; two things in it depend on the
deployment and are filled in per request of ``/openapi.json``: the study spec's schema
carries this server's limits (:mod:`cellsearch.service.studies.spec_schema`), and while the API
is open (no key needed) every operation's security is marked optional.
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from cellsearch.service.api.security import keys_required
from cellsearch.service.settings import Settings, get_settings
from cellsearch.service.store.db import engine_for
from cellsearch.service.studies.spec_schema import published_spec_schema, published_suite_schema

SPEC_BODIES = {
    "StudySpec": (("/api/v1/studies", "post"), ("/api/v1/studies/validate", "post")),
    "SuiteSpec": (("/api/v1/suites", "post"),),
}
COMPONENTS = "#/components/schemas/"


def app_settings(app: FastAPI) -> Settings:
    """The settings the app's routes see (a test's override included)."""
    settings: Settings = app.dependency_overrides.get(get_settings, get_settings)()
    return settings


def install_openapi(app: FastAPI) -> None:
    """Serve an OpenAPI document that states the limits and whether keys are required."""
    base: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        if not base:
            base.update(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                )
            )
        settings = app_settings(app)
        document = copy.deepcopy(base)
        _publish_spec_schema(document, settings)
        _errors_are_json(document)
        if not _required(settings):
            _mark_security_optional(document)
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _required(settings: Settings) -> bool:
    try:
        return keys_required(settings, engine_for(settings))
    except Exception:  # the database cannot say: document the safe answer
        return True


def _publish_spec_schema(document: dict[str, Any], settings: Settings) -> None:
    """The study and suite spec bodies as the server checks them, limits included."""
    limits = settings.limits()
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name, spec in (
        ("StudySpec", published_spec_schema(limits)),
        ("SuiteSpec", published_suite_schema(limits, settings.max_suite_tasks)),
    ):
        defs = spec.pop("$defs")
        text = _retarget(spec, defs)
        schemas.update(text["defs"])
        schemas[name] = text["root"]
        for path, method in SPEC_BODIES[name]:
            operation = document["paths"][path][method]
            body = operation["requestBody"]["content"]["application/json"]
            body["schema"] = {"$ref": COMPONENTS + name}


def _retarget(root: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Point ``#/$defs/X`` references (and discriminator mappings) at components."""

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        if isinstance(node, str) and node.startswith("#/$defs/"):
            return COMPONENTS + node.removeprefix("#/$defs/")
        return node

    return {"root": walk(root), "defs": walk(defs)}


def _errors_are_json(document: dict[str, Any]) -> None:
    """An HTML route's errors are JSON too (FastAPI files them under the route's type)."""
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            for code, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                if code.isdigit() and int(code) >= 400 and "text/html" in content:
                    content["application/json"] = content.pop("text/html")


def _mark_security_optional(document: dict[str, Any]) -> None:
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            if isinstance(operation, dict) and operation.get("security"):
                operation["security"] = [{}, *operation["security"]]

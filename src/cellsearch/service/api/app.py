"""The FastAPI application: routers under /api/v1 and one table from errors to statuses."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import SQLAlchemyError

import cellsearch
from cellsearch.search.errors import DatasetError, SearchError, SpecError
from cellsearch.search.optuna_adapter import check_internals
from cellsearch.service.api.guards import install_guards
from cellsearch.service.api.openapi import install_openapi
from cellsearch.service.api.routes import (
    auth,
    catalog,
    datasets,
    health,
    models,
    studies,
    suites,
    travel,
    validation,
    workers,
)
from cellsearch.service.artifacts.operations import store_for, sweep
from cellsearch.service.errors import (
    Conflict,
    Forbidden,
    InvalidArchive,
    NotAuthenticated,
    NotFound,
    PayloadTooLarge,
    ServiceError,
    StorageUnavailable,
)
from cellsearch.service.store.db import engine_for

log = logging.getLogger(__name__)
PREFIX = "/api/v1"

# error class -> HTTP status; the first match in order wins. Errors of every layer are
# mapped here and nowhere else; a 500 never shows its internals (they go to the log).
STATUS_BY_ERROR: tuple[tuple[type[Exception], int], ...] = (
    (SpecError, 422),
    (DatasetError, 422),
    (InvalidArchive, 422),
    (NotAuthenticated, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (Conflict, 409),
    (PayloadTooLarge, 413),
    (StorageUnavailable, 503),
    (ServiceError, 500),
    (SearchError, 500),
    (SQLAlchemyError, 500),
)
INTERNAL = "internal error (details are in the server's log)"


def error_response(exc: Exception) -> JSONResponse:
    """The response for ``exc``: its status from :data:`STATUS_BY_ERROR` and a detail."""
    status = next(code for cls, code in STATUS_BY_ERROR if isinstance(exc, cls))
    if isinstance(exc, SpecError):  # a spec always arrives in a request's body
        detail: object = [{**e.as_dict(), "loc": ["body", *e.loc]} for e in exc.errors]
    elif isinstance(exc, DatasetError):  # an upload's content: one entry, like every 422
        detail = [{"loc": ["body", "file"], "msg": str(exc), "type": "invalid_dataset"}]
    elif isinstance(exc, InvalidArchive):  # a study archive's content, likewise
        detail = [{"loc": ["body", "file"], "msg": str(exc), "type": "invalid_archive"}]
    elif status == 500:
        log.error("request failed", exc_info=exc)
        detail = INTERNAL
    else:
        if status > 500:
            log.error("request failed: %s", exc)
        detail = str(exc)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(status_code=status, content={"detail": detail}, headers=headers)


@asynccontextmanager
async def frozen_startup(app: FastAPI) -> AsyncIterator[None]:
    """Keep what exists once the API has started out of the garbage collector's full passes.

    The modules and objects an API process loads (optuna, SQLAlchemy, pydantic, numpy,
    scipy: about 200,000 objects) live as long as the process, yet a full collection walks
    them all: 90-240 ms on the development machine, a stall of every request in flight
    that showed as the slowest 1% of latencies. :func:`gc.freeze` moves them to a
    generation that collections skip; garbage is collected first, so none is kept, and
    they are handed back at shutdown.
    """
    _sweep(app)
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _sweep(app: FastAPI) -> None:
    """Remove the artifacts of studies deleted while no API ran (logged, never fatal)."""
    from cellsearch.service.api.openapi import app_settings

    settings = app_settings(app)
    try:
        sweep(engine=engine_for(settings), store=store_for(settings))
    except Exception:
        log.warning("artifacts of deleted studies not swept", exc_info=True)


def create_app() -> FastAPI:
    """Build the application (settings come from the ``get_settings`` dependency).

    Raises:
        OptunaInternalsError: the installed Optuna lacks an internal the API reads
            Optuna's tables through (at start-up, not in a request).
    """
    check_internals()
    app = FastAPI(
        lifespan=frozen_startup,
        title="cellsearch",
        version=cellsearch.__version__,
        description="Hyperparameter search in which the recurrent cell type is a hyperparameter.",
        docs_url="/docs",
    )
    routers = (studies.router, models.router, datasets.router, catalog.router, health.router,
               workers.router)  # fmt: skip
    for router in (*routers, auth.router):
        app.include_router(router, prefix=PREFIX)
    app.include_router(validation.router, prefix=PREFIX)  # POST /studies/validate
    app.include_router(travel.router, prefix=PREFIX)  # export, POST /studies/import
    for router in (suites.router, suites.schema_router):
        app.include_router(router, prefix=PREFIX)
    install_guards(app)
    install_openapi(app)

    async def _handle(request: Request, exc: Exception) -> Response:
        if isinstance(exc, NotAuthenticated) and auth.wants_page(request):
            return auth.login_redirect(request)  # a browser without a session: sign in
        return error_response(exc)

    for base in (SearchError, ServiceError, SQLAlchemyError):
        app.add_exception_handler(base, _handle)

    @app.get("/", include_in_schema=False)
    def _root() -> RedirectResponse:
        return RedirectResponse("/docs")

    return app

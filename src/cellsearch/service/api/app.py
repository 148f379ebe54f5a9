"""The FastAPI application: routers under /api/v1 and one error handler table."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse

import cellsearch
from cellsearch.search.errors import DatasetError, SpecError
from cellsearch.service.api.routes import catalog, datasets, health, studies, workers
from cellsearch.service.errors import (
    Conflict,
    NotFound,
    PayloadTooLarge,
    ServiceError,
    StorageUnavailable,
)

log = logging.getLogger(__name__)
PREFIX = "/api/v1"

# error class -> HTTP status; the first match in order wins
STATUS_BY_ERROR: tuple[tuple[type[Exception], int], ...] = (
    (NotFound, 404),
    (Conflict, 409),
    (PayloadTooLarge, 413),
    (StorageUnavailable, 503),
    (ServiceError, 500),
)


def create_app() -> FastAPI:
    """Build the application (settings come from the ``get_settings`` dependency)."""
    app = FastAPI(
        title="cellsearch",
        version=cellsearch.__version__,
        description="Hyperparameter search in which the recurrent cell type is a hyperparameter.",
        docs_url="/docs",
    )
    for router in (studies.router, datasets.router, catalog.router, health.router, workers.router):
        app.include_router(router, prefix=PREFIX)

    @app.exception_handler(SpecError)
    async def _invalid_spec(_request: Request, exc: SpecError) -> JSONResponse:
        detail = [{**e.as_dict(), "loc": ["body", *e.loc]} for e in exc.errors]
        return JSONResponse(status_code=422, content={"detail": detail})

    @app.exception_handler(DatasetError)
    async def _invalid_dataset(_request: Request, exc: DatasetError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": str(exc)})

    @app.exception_handler(ServiceError)
    async def _service_error(_request: Request, exc: ServiceError) -> JSONResponse:
        status = next(code for cls, code in STATUS_BY_ERROR if isinstance(exc, cls))
        if status >= 500:
            log.error("request failed: %s", exc)
        return JSONResponse(status_code=status, content={"detail": str(exc)})

    @app.get("/", include_in_schema=False)
    def _root() -> RedirectResponse:
        return RedirectResponse("/docs")

    return app

"""The ``cellsearch`` Typer app and what its commands share (options, settings, logging)."""

from __future__ import annotations

import logging
from typing import Annotated, Any

import typer

from cellsearch.service.cli.client import Api
from cellsearch.service.settings import Settings

app = typer.Typer(
    name="cellsearch",
    help="Hyperparameter search in which the recurrent cell type is a hyperparameter.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

DatabaseUrl = Annotated[
    str | None, typer.Option("--database-url", help="SQLAlchemy URL [CELLSEARCH_DATABASE_URL].")
]
ApiUrl = Annotated[str | None, typer.Option("--api-url", help="API root [CELLSEARCH_API_URL].")]


def load_settings(**overrides: Any) -> Settings:
    """The settings, with the command line's values over the environment's."""
    values = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**values)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def api(api_url: str | None) -> Api:
    """A client of the API at ``--api-url`` (or ``CELLSEARCH_API_URL``)."""
    return Api(load_settings(api_url=api_url).api_url)


def setup_logging() -> None:
    """Log lines with time, level and logger on stderr (server-side commands)."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)


def redact(url: str) -> str:
    """Hide a password in a database URL."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)

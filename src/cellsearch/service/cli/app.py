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
_api_key: dict[str, str | None] = {"key": None}


@app.callback()
def _main(
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            help="API key of the client commands [CELLSEARCH_API_KEY].",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Hyperparameter search in which the recurrent cell type is a hyperparameter."""
    _api_key["key"] = api_key


def load_settings(**overrides: Any) -> Settings:
    """The settings, with the command line's values over the environment's."""
    values = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**values)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def api(api_url: str | None) -> Api:
    """A client of the API at ``--api-url`` (or ``CELLSEARCH_API_URL``), with the key of
    ``--api-key`` (or ``CELLSEARCH_API_KEY``)."""
    settings = load_settings(api_url=api_url, api_key=_api_key["key"])
    key = settings.api_key.get_secret_value() if settings.api_key else None
    return Api(settings.api_url, api_key=key)


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

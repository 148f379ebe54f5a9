"""The ``cellsearch`` Typer app and what its commands share (options, settings, logging)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from cellsearch.client import Client, ClientError
from cellsearch.service.cli.client import fail, message_of
from cellsearch.service.settings import Settings


class _Commands(TyperGroup):
    """The command group: an error of the API client ends any command with its message."""

    def invoke(self, ctx: Any) -> Any:  # click's Context (typer vendors its own click)
        try:
            return super().invoke(ctx)
        except ClientError as exc:
            fail(message_of(exc))


app = typer.Typer(
    name="cellsearch",
    cls=_Commands,
    help="Hyperparameter search in which the recurrent cell type is a hyperparameter.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

DatabaseUrl = Annotated[
    str | None, typer.Option("--database-url", help="SQLAlchemy URL [CELLSEARCH_DATABASE_URL].")
]
ApiUrl = Annotated[str | None, typer.Option("--api-url", help="API root [CELLSEARCH_API_URL].")]
Yes = Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")]


@dataclass(frozen=True)
class GlobalOptions:
    """The options given before the command (``cellsearch --api-key KEY list``), kept as
    the root context's object so that every command finds them."""

    api_key: str | None = None


@app.callback()
def _main(
    ctx: typer.Context,
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
    ctx.obj = GlobalOptions(api_key=api_key)


def load_settings(**overrides: Any) -> Settings:
    """The settings, with the command line's values over the environment's."""
    values = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**values)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def api(ctx: typer.Context, api_url: str | None) -> Client:
    """A client of the API at ``--api-url`` (or ``CELLSEARCH_API_URL``), with the key of
    ``--api-key`` (or ``CELLSEARCH_API_KEY``) from the command's context."""
    options = ctx.find_object(GlobalOptions) or GlobalOptions()
    settings = load_settings(api_url=api_url, api_key=options.api_key)
    key = settings.api_key.get_secret_value() if settings.api_key else ""  # "": no key
    return Client(settings.api_url, api_key=key)


def confirm(yes: bool, question: str) -> None:
    """Ask ``question`` (aborting on no) unless ``--yes`` was given."""
    if not yes:
        typer.confirm(question, abort=True)


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

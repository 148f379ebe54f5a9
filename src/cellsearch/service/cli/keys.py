"""``cellsearch keys create | list | revoke``: API keys, straight in the database.

These commands talk to the database (like ``migrate``), not to the API: whoever can
reach the database administers the keys. ``create`` prints the new key once, alone on
the last line of its output, so that a script can take it with ``tail -n 1``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine

from cellsearch.service.cli.app import DatabaseUrl, app, load_settings
from cellsearch.service.errors import ServiceError

keys_app = typer.Typer(help="Create, list and revoke API keys (in the database).")
app.add_typer(keys_app, name="keys")
ROLES = "reader (every GET), submitter (also creates and acts on its own), admin (everything)"


def _engine(database_url: str | None) -> Engine:
    """The database's engine, migrated first (idempotent): keys can be made before the
    first ``serve``."""
    from cellsearch.service.store.db import engine_for
    from cellsearch.service.store.migrate import upgrade

    settings = load_settings(database_url=database_url)
    upgrade(settings)
    return engine_for(settings)


@keys_app.command("create")
def create(
    name: Annotated[str, typer.Option(help="A unique name: who or what uses the key.")],
    role: Annotated[str, typer.Option(help=f"One of: {ROLES}.")] = "reader",
    database_url: DatabaseUrl = None,
) -> None:
    """Create a key and print it once (the database keeps only its digest)."""
    from cellsearch.service.access.keys import create_key

    try:
        record, key = create_key(_engine(database_url), name=name, role=role)
    except (ValueError, ServiceError) as exc:
        typer.secho(f"error: {exc}", err=True, fg="red")
        raise typer.Exit(2) from None
    typer.echo(f"created key {record.name!r} (role {record.role}, prefix {record.prefix}).")
    typer.echo("Store it now: it is shown only this once. Send it as 'Authorization: Bearer")
    typer.echo("KEY' or 'X-API-Key: KEY'; the CLI reads --api-key or CELLSEARCH_API_KEY.")
    typer.echo(key)


@keys_app.command("list")
def list_(database_url: DatabaseUrl = None) -> None:
    """Every key: name, role, prefix, created, last used, revoked."""
    from cellsearch.service.access.keys import list_keys

    records = list_keys(_engine(database_url))
    if not records:
        typer.echo("no keys yet: `cellsearch keys create --name NAME --role admin`")
        return
    table = Table("name", "role", "prefix", "created", "last used", "revoked")
    for r in records:
        table.add_row(r.name, r.role, r.prefix, _when(r.created_at), _when(r.last_used_at),
                      _when(r.revoked_at))  # fmt: skip
    Console().print(table)


@keys_app.command("revoke")
def revoke(name: str, database_url: DatabaseUrl = None) -> None:
    """Revoke a key: requests (and browser sessions) with it fail from now on."""
    from cellsearch.service.access.keys import revoke_key

    try:
        record = revoke_key(_engine(database_url), name)
    except ServiceError as exc:
        typer.secho(f"error: {exc}", err=True, fg="red")
        raise typer.Exit(2) from None
    typer.echo(f"revoked key {record.name!r} ({record.prefix}...)")


def _when(value: datetime | None) -> str:
    if value is None:
        return "-"
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value  # SQLite: naive UTC
    return f"{aware.astimezone(UTC):%Y-%m-%d %H:%M} UTC"

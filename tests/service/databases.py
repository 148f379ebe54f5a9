"""A throwaway PostgreSQL database for checks that run outside pytest (benchmarks/)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def throwaway_database(admin_url: str, prefix: str) -> Iterator[str]:
    """A new database on the server of ``admin_url`` (a SQLAlchemy URL of any database),
    named ``<prefix>_<random>``: its URL, dropped (with its connections) afterwards."""
    import psycopg
    from sqlalchemy.engine import make_url

    from cellsearch.service.store.db import dispose_all

    base = make_url(admin_url)
    admin = base.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        dispose_all()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

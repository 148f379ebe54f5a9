"""The archive's Optuna part: an Optuna SQLite storage holding one study, written and read
in bulk.

Written: Optuna's ``RDBStorage`` makes the file's schema (its own migrations and version
row, so optuna-dashboard and ``optuna.load_study`` open the file as it is), then the
study and its trials are written in one transaction by
:mod:`cellsearch.search.optuna_adapter.bulk_write`.

Read: the file comes from an archive, so nothing in it is trusted. It is opened read-only
with SQLite's ``trusted_schema`` off (no function of the file's schema runs), checked
(``PRAGMA quick_check``, each table the study needs is a table, one study of the expected
name), and read with the adapter's bulk reader. Trial datetimes are put back in
``FrozenTrial``'s naive local time whichever Optuna wrote the file
(:attr:`~.layout.Manifest.optuna_datetimes`).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial
from sqlalchemy import Connection, create_engine, event, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from cellsearch.search.optuna_adapter import bulk_read, bulk_write
from cellsearch.service.errors import InvalidArchive
from cellsearch.service.travel.layout import OPTUNA

DATETIMES = "utc" if bulk_write.STORED_IN_UTC else "local"
"""How this installation's Optuna stores trial datetimes (the manifest says it)."""
_HEADER = b"SQLite format 3\x00"


def write_optuna_file(
    path: Path, study: bulk_write.StudyRows, trials: Sequence[FrozenTrial]
) -> None:
    """Make the Optuna SQLite storage at ``path`` holding ``study`` and its ``trials``."""
    url = f"sqlite:///{path}"
    storage = optuna.storages.RDBStorage(url, engine_kwargs={"poolclass": NullPool})
    storage.engine.dispose()
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            study_id = bulk_write.insert_study(conn, study)
            bulk_write.insert_trials(conn, study_id, trials)
    finally:
        engine.dispose()


def read_optuna_file(
    path: Path, name: str, datetimes: str
) -> tuple[bulk_write.StudyRows, list[FrozenTrial]]:
    """The study ``name`` and its trials from the Optuna SQLite storage at ``path`` (written
    with trial datetimes stored as ``datetimes``: ``utc`` or ``local``).

    Raises:
        InvalidArchive: the file is not such a storage, or holds something else.
    """
    with path.open("rb") as head:
        if head.read(len(_HEADER)) != _HEADER:
            raise InvalidArchive(f"{OPTUNA} is not a SQLite database")
    engine = create_engine(f"sqlite:///file:{path}?mode=ro&uri=true", poolclass=NullPool)
    event.listen(engine, "connect", _untrusted)
    try:
        with engine.connect() as conn:
            study_id = _checked_study(conn, name)
            rows = bulk_write.read_study(conn, study_id)
            trials = bulk_read.read_trials(conn, study_id)
    except InvalidArchive:
        raise
    except (SQLAlchemyError, LookupError, ValueError, TypeError, json.JSONDecodeError) as exc:
        detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else repr(exc)
        raise InvalidArchive(f"{OPTUNA} is not a readable Optuna storage: {detail}") from None
    finally:
        engine.dispose()
    if datetimes != DATETIMES:
        _retime(trials, stored_utc=datetimes == "utc")
    return rows, trials


def _untrusted(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA trusted_schema=OFF")
    cursor.execute("PRAGMA query_only=ON")
    cursor.close()


def _checked_study(conn: Connection, name: str) -> int:
    """The id of the file's one study, ``name``, once the file passes its checks."""
    if conn.execute(text("PRAGMA quick_check")).scalar() != "ok":
        raise InvalidArchive(f"{OPTUNA} is a damaged SQLite database")
    listed = text("SELECT name, type FROM sqlite_master WHERE type IN ('table', 'view')")
    kinds = {str(name): str(kind) for name, kind in conn.execute(listed)}
    odd = [t for t in bulk_write.TABLES if kinds.get(t) != "table"]
    if odd:
        raise InvalidArchive(f"{OPTUNA} is not an Optuna storage: it lacks the table(s) {odd}")
    if bulk_write.study_names(conn) != [name]:
        raise InvalidArchive(f"{OPTUNA} must hold the one study {name!r}")
    return bulk_read.find_study_ids(conn, [name])[name]


def _retime(trials: Sequence[FrozenTrial], *, stored_utc: bool) -> None:
    """Put back naive local datetimes read from a file whose Optuna stored them the other
    way than this one (the bulk reader converted them as this Optuna stores them)."""

    def fixed(value: dt.datetime | None) -> dt.datetime | None:
        if value is None:
            return None
        if stored_utc:  # read as local by an Optuna 4: it is UTC
            return value.replace(tzinfo=dt.UTC).astimezone().replace(tzinfo=None)
        return value.astimezone(dt.UTC).replace(tzinfo=None)  # undo the UTC -> local read

    for trial in trials:
        trial.datetime_start = fixed(trial.datetime_start)
        trial.datetime_complete = fixed(trial.datetime_complete)

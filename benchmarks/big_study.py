"""Build a large finished study fast: bulk inserts into Optuna's tables through SQL.

``study.add_trials`` writes trial by trial (312 s for 10,000 trials on SQLite, see
REPORT.md); here every table of a study is written with a few multi-row ``INSERT``
statements (``COPY`` on PostgreSQL) with explicit trial ids. The trials are what a
worker records: the parameters of the search space below (the cell type a categorical
stored as its index, log-scaled ints and floats, a conditional cell option), one
intermediate value per epoch, the objective value, and the full set of user attributes
of :mod:`cellsearch.search.record`. 70% complete after 20 epochs, 25% pruned after 2-5,
5% failed as diverged. The service's study record is created as the API would and
marked completed.

Used by ``benchmarks/api_load.py``; on its own::

    python benchmarks/big_study.py --url sqlite:///big.db --trials 10000
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
    distribution_to_json,
)
from optuna.storages._rdb import models
from sqlalchemy import Connection, func, insert, select, text, update

from cellsearch.search.optuna_adapter import bulk_read
from cellsearch.search.record import Attr
from cellsearch.search.study.spec import StudySpec
from cellsearch.service.settings import Settings
from cellsearch.service.store.db import engine_for, optuna_storage
from cellsearch.service.store.migrate import upgrade
from cellsearch.service.store.tables import StudyRecord
from cellsearch.service.studies import operations as studies

CELLS = ("lstm", "gru", "rnn_tanh", "mgu", "mingru")
EPOCHS = 20
SPACE: dict[str, BaseDistribution] = {  # as sampled for SPEC (examples/adding-t100.yaml)
    "cell_type": CategoricalDistribution(CELLS),
    "num_layers": IntDistribution(1, 2),
    "hidden_size": IntDistribution(16, 256, log=True),
    "lstm.forget_bias": FloatDistribution(0.0, 2.0),
    "learning_rate": FloatDistribution(1e-4, 1e-1, log=True),
    "batch_size": CategoricalDistribution((32, 64, 128)),
    "dropout": FloatDistribution(0.0, 0.5),
    "optimizer": CategoricalDistribution(("adam",)),
}
SPEC = {  # the design's reference study with five cells; weight decay and clipping fixed
    "task": {"kind": "adding", "seq_len": 100},
    "space": {
        "cell_type": list(CELLS),
        "hidden_size": {"low": 16, "high": 256, "log": True},
        "num_layers": {"low": 1, "high": 2},
        "learning_rate": {"low": 1e-4, "high": 1e-1, "log": True},
        "batch_size": [32, 64, 128],
        "dropout": {"low": 0.0, "high": 0.5},
        "optimizer": ["adam"],
        "lstm.forget_bias": {"low": 0.0, "high": 2.0},
    },
    "objective": {"metric": "val_loss", "direction": "minimize"},
    "budget": {"max_epochs": EPOCHS},
    "pruner": "hyperband",
    "seed": 0,
}
T = {
    "trials": models.TrialModel.__table__,
    "params": models.TrialParamModel.__table__,
    "values": models.TrialValueModel.__table__,
    "steps": models.TrialIntermediateValueModel.__table__,
    "attrs": models.TrialUserAttributeModel.__table__,
}


@dataclass
class Rows:
    """Rows of each of Optuna's trial tables, as column dicts."""

    by_table: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {name: [] for name in T}
    )


def _attrs(rng: np.random.Generator, cell: str, params: dict[str, Any], epochs: int) -> dict:
    hidden = int(params["hidden_size"])
    final = float(rng.gamma(2.0, 0.01))
    out: dict[str, Any] = {
        Attr.CELL_TYPE: cell,
        Attr.HIDDEN_SIZE: hidden,
        Attr.NUM_LAYERS: int(params["num_layers"]),
        Attr.CELL_OPTIONS: {"forget_bias": params["lstm.forget_bias"]} if cell == "lstm" else {},
        Attr.PARAM_COUNT: 4 * hidden * (hidden + 2) + hidden + 1,
        Attr.DEVICE: "cpu",
        Attr.SEED: int(rng.integers(2**31)),
        Attr.TORCH_VERSION: "2.13.0",
        Attr.CELLSEARCH_VERSION: "0.1.0",
        Attr.SECONDS: 2.5 * epochs,
        Attr.SECONDS_PER_EPOCH: 2.5,
        Attr.EPOCHS_RUN: epochs,
        Attr.SAMPLES_PER_SECOND: 3200.0,
        Attr.BEST_EPOCH: epochs - 1,
        Attr.BEST_VAL_LOSS: final,
        Attr.TEST_LOSS: final * 1.05,
        Attr.TEST_METRIC: final * 1.05,
        Attr.TEST_METRIC_NAME: "mse",
        Attr.STOP_REASON: "max_epochs",
        Attr.PRECISION: "fp32",
        Attr.NOTES: None,
        Attr.PEAK_MEMORY_BYTES: None,
    }
    return out


def _sample(rng: np.random.Generator, cell: str) -> dict[str, Any]:
    """External parameter values of one trial (the cell option only for lstm)."""
    out: dict[str, Any] = {"cell_type": cell}
    for name, dist in SPACE.items():
        if name == "cell_type" or (name.startswith("lstm.") and cell != "lstm"):
            continue
        if isinstance(dist, CategoricalDistribution):
            out[name] = dist.choices[int(rng.integers(len(dist.choices)))]
        elif isinstance(dist, IntDistribution) and dist.log:
            draw = np.exp(rng.uniform(np.log(dist.low), np.log(dist.high + 1)))
            out[name] = min(int(draw), dist.high)
        elif isinstance(dist, IntDistribution):
            out[name] = int(rng.integers(dist.low, dist.high + 1))
        else:
            assert isinstance(dist, FloatDistribution)
            low, high = (np.log(dist.low), np.log(dist.high)) if dist.log else (dist.low, dist.high)
            draw = float(rng.uniform(low, high))
            out[name] = float(np.exp(draw)) if dist.log else draw
    return out


def trial_rows(rng: np.random.Generator, trial_id: int, study_id: int, number: int) -> Rows:
    """Every row of one finished trial."""
    cell = CELLS[number % len(CELLS)]
    params = _sample(rng, cell)
    fate = rng.random()
    state = "COMPLETE" if fate < 0.70 else ("PRUNED" if fate < 0.95 else "FAIL")
    epochs = EPOCHS if state == "COMPLETE" else int(rng.integers(2, 6))
    lr = float(params["learning_rate"])
    final = 0.02 + 0.05 * abs(np.log10(lr) + 2.5) + 0.01 * CELLS.index(cell)
    final += float(rng.gamma(2.0, 0.01))
    start = dt.datetime(2026, 1, 1) + dt.timedelta(seconds=30 * number)
    rows = Rows()
    rows.by_table["trials"].append(
        {
            "trial_id": trial_id,
            "number": number,
            "study_id": study_id,
            "state": state,
            "datetime_start": start,
            "datetime_complete": start + dt.timedelta(seconds=2.5 * epochs),
        }
    )
    for name, value in params.items():
        dist = SPACE[name]
        rows.by_table["params"].append(
            {
                "trial_id": trial_id,
                "param_name": name,
                "param_value": dist.to_internal_repr(value),
                "distribution_json": _DIST_JSON[name],
            }
        )
    for epoch in range(epochs):
        value = final + 0.5 * float(np.exp(-epoch / 4))
        rows.by_table["steps"].append(
            {
                "trial_id": trial_id,
                "step": epoch,
                "intermediate_value": value,
                "intermediate_value_type": "FINITE",
            }
        )
    if state == "COMPLETE":
        rows.by_table["values"].append(
            {"trial_id": trial_id, "objective": 0, "value": final, "value_type": "FINITE"}
        )
    attrs = _attrs(rng, cell, params, epochs)
    if state == "FAIL":
        attrs |= {Attr.FAILURE_KIND: "diverged", Attr.FAILURE_REASON: "loss became nan"}
    for key, value in attrs.items():
        rows.by_table["attrs"].append(
            {"trial_id": trial_id, "key": str(key), "value_json": json.dumps(value)}
        )
    return rows


_DIST_JSON = {name: distribution_to_json(dist) for name, dist in SPACE.items()}


def _batches(
    rng: np.random.Generator, first_id: int, study_id: int, n: int, size: int
) -> Iterator[Rows]:
    batch = Rows()
    for number in range(n):
        rows = trial_rows(rng, first_id + number, study_id, number)
        for name, found in rows.by_table.items():
            batch.by_table[name].extend(found)
        if (number + 1) % size == 0 or number == n - 1:
            yield batch
            batch = Rows()


def _write(conn: Connection, rows: Rows) -> None:
    for name, found in rows.by_table.items():
        if not found:
            continue
        if conn.dialect.name == "postgresql":
            _copy(conn, name, found)
        else:
            conn.execute(insert(T[name]), found)


def _copy(conn: Connection, name: str, rows: list[dict[str, Any]]) -> None:
    """PostgreSQL's COPY FROM STDIN: the fastest way in (text format, tab separated)."""
    columns = list(rows[0])
    buffer = io.StringIO()
    for row in rows:
        buffer.write("\t".join(_copy_text(row[c]) for c in columns) + "\n")
    raw: Any = conn.connection.dbapi_connection  # psycopg's connection, for its COPY
    statement = f"COPY {T[name].name} ({', '.join(columns)}) FROM STDIN"
    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        copy.write(buffer.getvalue())


def _copy_text(value: Any) -> str:
    if value is None:
        return "\\N"
    text_value = str(value)
    return text_value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def build_study(url: str, name: str, n: int, *, seed: int = 0, batch: int = 5000) -> float:
    """Create study ``name`` with ``n`` finished trials (service record included).

    Returns:
        Seconds the trial inserts took.
    """
    settings = Settings(database_url=url)
    upgrade(settings)
    engine, storage = engine_for(settings), optuna_storage(settings)
    spec = StudySpec.model_validate(SPEC | {"name": name, "budget": {"n_trials": n}})
    studies.create_study(engine=engine, storage=storage, spec=spec)
    started = time.perf_counter()
    with storage.engine.begin() as conn:
        study_id = bulk_read.find_study_id(conn, name)
        assert study_id is not None
        first_id = (conn.scalar(select(func.max(T["trials"].c.trial_id))) or 0) + 1
        rng = np.random.default_rng(seed)
        for rows in _batches(rng, first_id, study_id, n, batch):
            _write(conn, rows)
        if conn.dialect.name == "postgresql":  # explicit ids: move the sequence past them
            conn.execute(
                text(
                    "SELECT setval(pg_get_serial_sequence('trials', 'trial_id'), "
                    "(SELECT MAX(trial_id) FROM trials))"
                )
            )
    elapsed = time.perf_counter() - started
    with storage.engine.connect() as conn:  # the steady state a live database reaches
        if conn.dialect.name == "postgresql":  # what autovacuum does after a while (else
            # it starts during the measurement, on the same cores)
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
        else:  # fold the insert's write-ahead log into the database file
            conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    with engine.begin() as conn:
        conn.execute(
            update(StudyRecord)
            .where(StudyRecord.name == name)
            .values(status="completed", claimed=n)
        )
    return elapsed


def check_loads(url: str, name: str, n: int, *, sample: int = 50) -> None:
    """Optuna reads the study back: its trial count, best trial and a sample of trials.

    Each sampled trial, as Optuna's storage reads it, must equal the bulk reader's copy
    and carry the parameters and attributes written.

    Raises:
        AssertionError: Optuna reads something else than was written.
    """
    study = optuna.load_study(study_name=name, storage=url)
    storage, study_id = study._storage, study._study_id
    assert storage.get_n_trials(study_id) == n
    assert study.best_trial.state == optuna.trial.TrialState.COMPLETE
    numbers = sorted({0, n - 1, *range(0, n, max(1, n // sample))})
    theirs = [
        storage.get_trial(storage.get_trial_id_from_study_id_trial_number(study_id, number))
        for number in numbers
    ]
    with storage._backend.engine.connect() as conn:  # type: ignore[attr-defined]
        ours = bulk_read.read_trials_by_id(conn, [t._trial_id for t in theirs])
    for mine, trial in zip(ours, theirs, strict=True):
        assert mine == trial, trial.number
        assert trial.params["cell_type"] == CELLS[trial.number % len(CELLS)]
        assert trial.user_attrs[Attr.CELL_TYPE] == trial.params["cell_type"]
        assert trial.state.is_finished() and set(trial.params) <= set(SPACE)


def main() -> None:
    """Build one study from the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--name", default="big")
    parser.add_argument("--trials", type=int, default=10_000)
    args = parser.parse_args()
    seconds = build_study(args.url, args.name, args.trials)
    print(f"inserted {args.trials} trials in {seconds:.1f} s")
    check_loads(args.url, args.name, args.trials)
    print("optuna.load_study reads them back")


if __name__ == "__main__":
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    main()

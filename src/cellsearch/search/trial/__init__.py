"""One trial's work: its configuration, the objective that runs it, the trainer and its
optimizers, and retries while the database is away (Optuna's storage internals are
:mod:`cellsearch.search.optuna_adapter`'s)."""

"""The database: one URL, two owners.

- :mod:`.db`: engines, sessions and Optuna's storage on the configured URL.
- :mod:`.tables`: the service's own tables (``cellsearch_*``), migrated by Alembic from
  ``cellsearch/service/migrations`` (:mod:`.migrate` applies them, after Optuna's).
- :mod:`.marker_cache`: what an API process keeps of a study's derived data (reports,
  counts, pages) while the study's trials are unchanged.

Optuna's own tables are read through :mod:`cellsearch.search.optuna_adapter`, never here.
"""

"""The service: REST API, CLI, the service's own tables, and what the API serves.

Subpackages, each the owner of one concern (arrows point one way: the packages lower in
this list import those above them, never the reverse; every one may import
:mod:`cellsearch.search` and :mod:`cellsearch.models`):

- :mod:`.store`: the database: engines and sessions for both owners (the service and
  Optuna), the service's tables, their migrations, and the per-process cache of what is
  derived from a study's trials.
- :mod:`.access`: API keys, roles, when keys are required, the browser's session cookie.
- :mod:`.workers`: the budget ledger and the roster of live workers (the worker loop's
  side of :mod:`cellsearch.search.worker.protocol`), and running workers as processes.
- :mod:`.datasets`: uploaded data sets: parsing in a child process, storing, deleting.
- :mod:`.studies`: study operations, trial counts and pages, summaries, the status a
  study shows, the spec's published schema and checks, optuna-dashboard's labels.
- :mod:`.reports`: the comparison report of a stored study (JSON, built once per change)
  and its page (sections, figures, static assets).
- :mod:`.suites`: suites of studies: their spec, operations and report page.
- :mod:`.travel`: a study's archive: export, and import on any server and database.
- :mod:`.api`: the FastAPI application, its routes, dependencies and response shapes.
- :mod:`.cli`: the ``cellsearch`` command.

Two modules serve all of them: :mod:`.settings` (everything read from the environment)
and :mod:`.errors` (every error the service raises, mapped to HTTP in one place).
"""

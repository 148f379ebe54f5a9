"""The Optuna side of cellsearch: everything between a study spec and a report.

Subpackages, in the order a trial meets them (arrows point one way, down this list):

- :mod:`.tasks`: the task registry and each task's data (numpy; tensors once built).
- :mod:`.study`: the study spec, the server's limits on it, and how the search runs
  (samplers, pruners, balanced allocation of trials to cell types).
- :mod:`.trial`: one trial's work: the sampled configuration (search space), the
  objective, the trainer and its optimizers, retries while the database is away.
- :mod:`.worker`: the worker runtime: the loop, its protocol with the service, stale-trial
  recovery, the heartbeat thread, CPU sharing, device choice.
- :mod:`.report`: the comparison report and its statistics.

Two modules serve all of them: :mod:`.errors` (every error this package raises) and
:mod:`.record` (the trial record: what is stored on each trial, and how to read it).
One package serves them too: :mod:`.optuna_adapter`, the only code that touches Optuna's
tables or private API (bulk reads and batched writes of trials, the per-cell view of a
study, the stale-trial checks, the check that those internals are still there).
This package never imports :mod:`cellsearch.service`.
"""

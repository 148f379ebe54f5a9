"""The Optuna side of cellsearch: everything between a study spec and a report.

Subpackages, in the order a trial meets them (arrows point one way, down this list):

- :mod:`.tasks`: the task registry and each task's data (numpy; tensors once built).
- :mod:`.study`: the study spec, the server's limits on it, and how the search runs
  (samplers, pruners, balanced allocation of trials to cell types).
- :mod:`.trial`: one trial: the sampled configuration, the objective, the trainer,
  fast writes to Optuna's tables, retries while the database is away.
- :mod:`.worker`: the worker runtime: the loop, its protocol with the service, stale-trial
  recovery, the heartbeat thread, CPU sharing, device choice.
- :mod:`.report`: the comparison report and its statistics.

Two modules serve all of them: :mod:`.errors` (every error this package raises) and
:mod:`.record` (the trial record: what is stored on each trial, and how to read it).
This package never imports :mod:`cellsearch.service`.
"""

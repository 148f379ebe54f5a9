"""Studies as the service keeps them.

- :mod:`.operations`: create, list, pause/resume/cancel, delete; trial counts and pages.
- :mod:`.summaries`: counts and best trial, kept per study while its trials are unchanged.
- :mod:`.states`: the status a study shows (``queued`` while it waits behind another).
- :mod:`.spec_checks`: every check a submitted spec passes; :mod:`.spec_schema`: the
  published JSON Schema of study and suite specs, with this server's limits.
- :mod:`.labels`: what optuna-dashboard shows of a study (objective name, spec in words).
"""

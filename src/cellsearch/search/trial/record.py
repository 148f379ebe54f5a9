"""How a finished trial counts: the shared vocabulary of workers, service and report.

A FAIL trial carries ``failure_kind`` in its user attributes:

* ``diverged`` (NaN or inf loss) and ``error`` (an exception while training) are
  outcomes of the model: they use a unit of the study's budget;
* ``interrupted`` (pause, cancel, SIGTERM) and ``stale`` (the worker died) are not:
  their parameters are requeued and run again.
"""

from __future__ import annotations

from optuna.trial import FrozenTrial, TrialState

COUNTED_FAILURES = ("diverged", "error")
REQUEUED_FAILURES = ("interrupted", "stale")


def failure_kind(trial: FrozenTrial) -> str:
    """The kind of a FAIL trial; a failure with no recorded kind counts as ``error``."""
    kind = trial.user_attrs.get("failure_kind")
    return kind if kind in COUNTED_FAILURES + REQUEUED_FAILURES else "error"


def is_counted(trial: FrozenTrial) -> bool:
    """Whether a trial used one unit of the study's ``n_trials`` budget."""
    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return True
    return trial.state == TrialState.FAIL and failure_kind(trial) in COUNTED_FAILURES

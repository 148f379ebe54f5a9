"""A study that serves a given list of trials, for Optuna's importance evaluators.

Optuna's evaluators (``get_param_importances``) take a study, not trials; the report
holds trials read in bulk, of several studies or of one cell type. :class:`TrialsStudy`
hands them over without writing them anywhere.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import Container, Iterator, Sequence

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

# The logger of Optuna's in-memory storage, which logs "A new study created" at INFO
IN_MEMORY_LOGGER = "optuna.storages._in_memory"


@contextlib.contextmanager
def quiet_in_memory_storage() -> Iterator[None]:
    """Silence the in-memory storage's INFO line about each new study, for a moment."""
    logger = logging.getLogger(IN_MEMORY_LOGGER)
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


class TrialsStudy(optuna.Study):
    """A study whose trials are a given list, for optuna's importance evaluators.

    Its storage is an empty in-memory study that gives the direction; ``get_trials``
    (the public method the evaluators read trials through) serves shallow copies of
    ``trials``, numbered apart (the evaluator tells trials apart by their ids, the private
    ``FrozenTrial._trial_id``). Copying thousands of trials into an in-memory storage
    instead (``add_trials`` deep-copies each one) cost several times the evaluation
    itself: about 0.3 s per 2,000 trials, six times per report.
    """

    def __init__(self, trials: Sequence[FrozenTrial], maximize: bool) -> None:
        storage = optuna.storages.InMemoryStorage()
        direction = StudyDirection.MAXIMIZE if maximize else StudyDirection.MINIMIZE
        with quiet_in_memory_storage():
            study_id = storage.create_new_study(directions=[direction], study_name="importance")
        super().__init__(study_name=storage.get_study_name_from_id(study_id), storage=storage)
        self._given = []
        for index, trial in enumerate(trials):  # the evaluator tells trials apart by id
            light = copy.copy(trial)
            light._trial_id = index
            self._given.append(light)

    def get_trials(
        self,
        deepcopy: bool = True,
        states: Container[TrialState] | None = None,
    ) -> list[FrozenTrial]:
        chosen = [t for t in self._given if states is None or t.state in states]
        return copy.deepcopy(chosen) if deepcopy else chosen

"""Per-cell pruning: each cell type is judged against its own history only.

The learning curves are affine in a per-trial quality ``q`` at every epoch (higher ``q``
is better), so two cells with the same sequence of ``q`` are ranked identically at every
epoch, whatever their offsets: a pruner that compares within a cell must then treat a
slow starter exactly as it treats a fast one.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable

import optuna
import pytest
from optuna.pruners import BasePruner
from optuna.trial import FrozenTrial, TrialState

from cellsearch.search.optuna_adapter import cell_view
from cellsearch.search.record import Attr
from cellsearch.search.study.pruning import CellPruner, global_pruner, make_pruner

PRUNERS = ["hyperband", "successive_halving", "median"]
EPOCHS = 27
PLATEAU = 9  # the slow starter sits at the baseline for this many epochs
BASELINE = 1.0
Curve = Callable[[int, float], float]


def fast(epoch: int, q: float) -> float:
    """Cell B: falls from the first epoch, to 0.2-0.4."""
    level = 0.4 + 0.5 * math.exp(-(epoch - 1) / 4)
    return level - 0.2 * (1 - math.exp(-epoch / 4)) * q


def slow(epoch: int, q: float) -> float:
    """Cell A: at the baseline for PLATEAU epochs, then falls below B, to 0.05-0.2."""
    if epoch <= PLATEAU:
        return BASELINE - 0.01 * q
    d = epoch - PLATEAU
    return 0.2 + 0.8 * math.exp(-d / 2) - (0.01 + 0.14 * (1 - math.exp(-d / 2))) * q


def test_curves_make_the_scenario() -> None:
    qs = [i / 10 for i in range(11)]
    for epoch in range(1, PLATEAU + 1):  # A is worse than every B up to the plateau's end
        assert min(slow(epoch, q) for q in qs) > max(fast(epoch, q) for q in qs)
    assert max(slow(EPOCHS, q) for q in qs) < min(fast(EPOCHS, q) for q in qs)  # A wins
    for curve in (fast, slow):  # non-increasing in the epoch, decreasing in q
        for q in qs:
            assert all(curve(e + 1, q) <= curve(e, q) for e in range(1, EPOCHS))
        assert all(curve(e, 0.3) > curve(e, 0.7) for e in range(1, EPOCHS + 1))


def run_trial(study: optuna.Study, cell: str | None, curve: Curve | None, q: float) -> int:
    """Ask, report ``curve`` epoch by epoch until pruned or done; the last epoch run.

    ``curve=None`` makes a placeholder: a trial that fails before its first report.
    """
    if cell is not None:
        study.enqueue_trial({"cell_type": cell})
    trial = study.ask()
    if cell is not None:
        assert trial.suggest_categorical("cell_type", ["a", "b"]) == cell
    if curve is None:
        study.tell(trial, state=TrialState.FAIL)
        return 0
    for epoch in range(1, EPOCHS + 1):
        trial.report(curve(epoch, q), epoch)
        if trial.should_prune():
            study.tell(trial, state=TrialState.PRUNED)
            return epoch
    study.tell(trial, min(curve(e, q) for e in range(1, EPOCHS + 1)))
    return EPOCHS


def qualities(n: int, seed: int = 0) -> list[float]:
    rng = random.Random(seed)
    return [rng.random() for _ in range(n)]


Outcomes = dict[int, tuple[str, int, TrialState]]


def paired_study(
    pruner: BasePruner, a_curve: Curve | None, b_curve: Curve | None, n: int = 30
) -> Outcomes:
    """Trials a, b, a, b...; the i-th trial of each cell has quality q_i.

    Returns:
        Trial number -> (cell, last epoch run, state).
    """
    study = optuna.create_study(study_name="slow-starter", pruner=pruner)
    for q in qualities(n):
        for cell, curve in (("a", a_curve), ("b", b_curve)):
            run_trial(study, cell, curve, q)
    return {t.number: (t.params["cell_type"], t.last_step or 0, t.state) for t in study.trials}


def reaching(last: Outcomes, cell: str, epoch: int) -> int:
    return sum(c == cell and e >= epoch for c, e, _ in last.values())


def per_cell(name: str) -> CellPruner:
    """The per-cell pruner alone: no minimum completions, no last-epoch guard."""
    return CellPruner(global_pruner(name, EPOCHS), min_complete_per_cell=0)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", PRUNERS)
def test_global_pruner_kills_the_slow_starter(name: str) -> None:
    last = paired_study(global_pruner(name, EPOCHS), slow, fast)  # type: ignore[arg-type]
    after_plateau = PLATEAU + 1
    assert 2 * reaching(last, "a", after_plateau) <= reaching(last, "b", after_plateau)


@pytest.mark.parametrize("name", PRUNERS)
def test_per_cell_pruner_keeps_both_cells_in_the_same_proportion(name: str) -> None:
    last = paired_study(per_cell(name), slow, fast)
    # Successive halving and the median rule see the same ranks in both cells: equal counts.
    # Hyperband's bracket is a hash of the trial number, and the i-th trials of a and b have
    # different numbers, so their brackets (hence their rungs) differ: allow 2 of 30.
    slack = 2 if name == "hyperband" else 0
    for epoch in (1, 2, 3, 4, 9, PLATEAU + 1, EPOCHS):
        assert abs(reaching(last, "a", epoch) - reaching(last, "b", epoch)) <= slack, epoch
    assert reaching(last, "a", PLATEAU + 1) < 30  # it did prune


@pytest.mark.parametrize("name", PRUNERS)
def test_slow_starter_is_treated_as_if_it_started_fast(name: str) -> None:
    """Same trial numbers, same ranks within cell a: identical decisions, trial by trial."""
    scenario = paired_study(per_cell(name), slow, fast)
    twin = paired_study(per_cell(name), fast, fast)
    assert scenario == twin
    unfair = paired_study(global_pruner(name, EPOCHS), slow, fast)  # type: ignore[arg-type]
    assert unfair != paired_study(global_pruner(name, EPOCHS), fast, fast)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", PRUNERS)
def test_per_cell_decisions_equal_those_in_a_study_of_that_cell_alone(name: str) -> None:
    """No trial of cell b reaches a decision about cell a (b's trials -> failed placeholders)."""
    mixed = paired_study(per_cell(name), slow, fast)
    alone = paired_study(global_pruner(name, EPOCHS), slow, None)  # type: ignore[arg-type]
    assert {k: v for k, v in mixed.items() if v[0] == "a"} == {
        k: v for k, v in alone.items() if v[0] == "a"
    }


def test_hyperband_brackets_are_those_of_the_global_pruner() -> None:
    """Bracket s puts its first rung at epoch 3**s: with no pruning, 4 - s rung values."""

    def brackets(pruner: CellPruner) -> dict[int, int]:
        study = optuna.create_study(study_name="brackets", pruner=pruner)
        for i, q in enumerate(qualities(20)):
            run_trial(study, "ab"[i % 2], fast, q)
        return {
            t.number: sum(k.startswith("completed_rung_") for k in t.system_attrs)
            for t in study.trials
        }

    def hyperband(per_cell: bool) -> CellPruner:
        base = global_pruner("hyperband", EPOCHS)
        return CellPruner(base, per_cell=per_cell, min_complete_per_cell=1000)  # never prunes

    within, across = brackets(hyperband(True)), brackets(hyperband(False))
    assert within == across
    assert set(within.values()) == {1, 2, 3, 4}  # all four brackets in use


def test_view_filters_every_path_and_refuses_the_rest() -> None:
    study = optuna.create_study()
    for i, q in enumerate(qualities(5)):
        run_trial(study, "ab"[i % 2], fast, q)
    view = cell_view(study, "a")
    numbers = [0, 2, 4]
    assert [t.number for t in view.get_trials()] == numbers
    assert [t.number for t in view._get_trials(deepcopy=False)] == numbers
    assert [t.number for t in view.trials] == numbers
    assert [t.number for t in view._storage.get_all_trials(view._study_id)] == numbers
    assert view._storage.get_n_trials(view._study_id, TrialState.COMPLETE) == 3
    assert view.study_name == study.study_name and view.direction == study.direction
    with pytest.raises(AttributeError, match="best_trial"):
        _ = view.best_trial
    with pytest.raises(AttributeError, match="get_best_trial"):
        view._storage.get_best_trial(view._study_id)


@pytest.mark.parametrize("name", ["hyperband", "successive_halving"])
def test_rung_values_are_written_to_the_trials(name: str) -> None:
    """Every trial ends at a rung (pruned there, or the last epoch), which records its value."""
    study = optuna.create_study(study_name="rungs", pruner=per_cell(name))
    for i, q in enumerate(qualities(12)):
        run_trial(study, "ab"[i % 2], fast, q)
    for trial in study.trials:
        rungs = sorted(k for k in trial.system_attrs if k.startswith("completed_rung_"))
        assert rungs, trial.number
        first = trial.system_attrs["completed_rung_0"]
        assert first in trial.intermediate_values.values()
    if name == "successive_halving":  # first rung at epoch 1
        assert all(
            t.system_attrs["completed_rung_0"] == t.intermediate_values[1] for t in study.trials
        )


class Always(BasePruner):
    """Prunes every trial from ``from_step`` on."""

    def __init__(self, from_step: int = 1) -> None:
        self.from_step = from_step

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        return (trial.last_step or 0) >= self.from_step


@pytest.mark.parametrize("per_cell_view", [True, False])
@pytest.mark.parametrize("minimum", [0, 1, 3])
def test_minimum_completions_per_cell(per_cell_view: bool, minimum: int) -> None:
    pruner = CellPruner(Always(), per_cell=per_cell_view, min_complete_per_cell=minimum)
    study = optuna.create_study(pruner=pruner)
    cells = ["a"] * 6 + ["b"] * 6  # b starts when a already has its completions
    lasts = [run_trial(study, cell, fast, 0.5) for cell in cells]
    assert lasts == ([EPOCHS] * minimum + [1] * (6 - minimum)) * 2


def test_minimum_completions_with_a_real_pruner() -> None:
    """Each trial worse than every earlier one: successive halving prunes all but the first."""
    worse: Callable[[int], Curve] = lambda k: lambda e, q: fast(e, q) + 0.1 * k  # noqa: E731
    for minimum, expected in ((0, [EPOCHS] + [1] * 5), (3, [EPOCHS] * 3 + [1] * 3)):
        pruner = CellPruner(
            global_pruner("successive_halving", EPOCHS), min_complete_per_cell=minimum
        )
        study = optuna.create_study(pruner=pruner)
        assert [run_trial(study, "a", worse(k), 0.5) for k in range(6)] == expected
        # The protected trials still recorded their rung values (the base pruner ran).
        assert all("completed_rung_0" in t.system_attrs for t in study.trials)


def test_minimum_completions_rejects_negative() -> None:
    with pytest.raises(ValueError, match="min_complete_per_cell"):
        CellPruner(Always(), min_complete_per_cell=-1)


def test_never_prunes_at_the_last_epoch() -> None:
    guarded = CellPruner(Always(from_step=EPOCHS), min_complete_per_cell=0, final_step=EPOCHS)
    study = optuna.create_study(pruner=guarded)
    assert run_trial(study, "a", fast, 0.5) == EPOCHS
    assert study.trials[0].state == TrialState.COMPLETE
    bare = CellPruner(Always(from_step=EPOCHS), min_complete_per_cell=0)
    study = optuna.create_study(pruner=bare)
    run_trial(study, "a", fast, 0.5)
    assert study.trials[0].state == TrialState.PRUNED


class Counting(Always):
    """:class:`Always`, counting the trials it was asked about."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: set[int] = set()

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        self.asked.add(trial.number)
        return super().prune(study, trial)


@pytest.mark.parametrize("keep", [True, False])
def test_random_draws_train_to_the_end_when_kept(keep: bool) -> None:
    base = Counting()
    study = optuna.create_study(pruner=CellPruner(base, min_complete_per_cell=0, keep_random=keep))
    for kind in ("random", "adaptive", "random", "adaptive"):
        study.enqueue_trial({"cell_type": "a"}, user_attrs={Attr.DRAW: kind})
        run_trial(study, None, fast, 0.5)
    states = [t.state for t in study.trials]
    kept = TrialState.COMPLETE if keep else TrialState.PRUNED
    assert states == [kept, TrialState.PRUNED, kept, TrialState.PRUNED]
    assert base.asked == {0, 1, 2, 3}  # asked even for the kept ones (rungs are recorded)


@pytest.mark.parametrize("name", ["hyperband", "successive_halving"])
def test_rung_pruners_prune_at_the_last_epoch_and_the_factory_does_not(name: str) -> None:
    """Their last rung sits at the last epoch: trials that trained every epoch are pruned."""

    def pruned_at_end(last: Outcomes) -> int:
        return sum(e == EPOCHS and state == TrialState.PRUNED for _, e, state in last.values())

    assert pruned_at_end(paired_study(global_pruner(name, EPOCHS), slow, fast)) > 0  # type: ignore[arg-type]
    factory = make_pruner(name, EPOCHS, "balanced", min_complete_per_cell=0)  # type: ignore[arg-type]
    assert pruned_at_end(paired_study(factory, slow, fast)) == 0


def test_factory() -> None:
    balanced = make_pruner("hyperband", 27, "balanced", min_complete_per_cell=5)
    assert isinstance(balanced, CellPruner) and balanced.per_cell
    assert isinstance(balanced.base, optuna.pruners.HyperbandPruner)
    assert (balanced.min_complete_per_cell, balanced.final_step) == (5, 27)
    adaptive = make_pruner("median", 27, "adaptive")
    assert isinstance(adaptive, CellPruner) and not adaptive.per_cell
    assert isinstance(adaptive.base, optuna.pruners.MedianPruner)
    sha = make_pruner("successive_halving", 9, "balanced")
    assert isinstance(sha, CellPruner)
    assert isinstance(sha.base, optuna.pruners.SuccessiveHalvingPruner)
    assert isinstance(make_pruner("none", 27, "balanced"), optuna.pruners.NopPruner)
    with pytest.raises(ValueError, match="unknown pruner"):
        global_pruner("asha", 27)  # type: ignore[arg-type]


def test_concurrent_trials_below_the_minimum_all_survive() -> None:
    """The soft side of the rule: 3 workers, a cell with 2 completions, all 3 trials survive.

    Each decision counts the completions stored at that moment (2), so none of the three
    is pruned, although each is worse than both completed trials: the cell ends with 5
    completions, (workers - 1) more than the minimum. The next worse trial is pruned.
    """
    pruner = make_pruner("successive_halving", EPOCHS, "balanced", min_complete_per_cell=3)
    study = optuna.create_study(pruner=pruner)
    assert [run_trial(study, "a", fast, q) for q in (0.9, 0.8)] == [EPOCHS, EPOCHS]
    trials = []
    for _ in range(3):
        study.enqueue_trial({"cell_type": "a"})
        trials.append(study.ask())
        trials[-1].suggest_categorical("cell_type", ["a", "b"])
    barrier = threading.Barrier(3)
    decisions: list[bool] = []

    def work(trial: optuna.Trial, q: float) -> None:
        for epoch in range(1, EPOCHS + 1):
            trial.report(fast(epoch, q), epoch)
            decisions.append(trial.should_prune())
            barrier.wait()  # nobody completes before every decision of the last epoch
        study.tell(trial, fast(EPOCHS, q))

    threads = [
        threading.Thread(target=work, args=(t, q))
        for t, q in zip(trials, (0.1, 0.2, 0.3), strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not any(decisions) and len(decisions) == 3 * EPOCHS
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 5
    assert run_trial(study, "a", fast, 0.0) == 1


@pytest.mark.parametrize("base", ["always", "successive_halving"])
def test_minimum_completions_hold_under_three_threads(base: str) -> None:
    """Hard side: a pruned trial's cell had >= 3 completions before it was told PRUNED."""
    inner = Always() if base == "always" else global_pruner("successive_halving", EPOCHS)
    study = optuna.create_study(pruner=CellPruner(inner, min_complete_per_cell=3))
    lock = threading.Lock()
    claims = iter(range(48))

    def work() -> None:
        while True:
            with lock:
                index = next(claims, None)
                if index is None:
                    return
                cell = "ab"[index % 2]
                study.enqueue_trial({"cell_type": cell})
                trial = study.ask()
                trial.suggest_categorical("cell_type", ["a", "b"])
            q = random.Random(index).random()
            for epoch in range(1, EPOCHS + 1):
                trial.report(fast(epoch, q), epoch)
                if trial.should_prune():
                    study.tell(trial, state=TrialState.PRUNED)
                    break
                time.sleep(0.0005)  # let the other threads interleave
            else:
                study.tell(trial, fast(EPOCHS, q))

    threads = [threading.Thread(target=work) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    trials = study.get_trials()
    assert len(trials) == 48
    assert overlapping(trials)  # the threads did run trials side by side
    check_minimum_completions(trials, 3)


def overlapping(trials: list[FrozenTrial]) -> int:
    """Pairs of trials that were running at the same time."""
    spans = [(t.datetime_start, t.datetime_complete) for t in trials]
    return sum(
        a[0] < b[1] and b[0] < a[1]  # type: ignore[operator]
        for i, a in enumerate(spans)
        for b in spans[i + 1 :]
    )


def check_minimum_completions(trials: list[FrozenTrial], minimum: int) -> None:
    """Each cell has >= minimum completions; each pruned trial came after that many."""
    for cell in ("a", "b"):
        mine = [t for t in trials if t.params["cell_type"] == cell]
        done = [t.datetime_complete for t in mine if t.state == TrialState.COMPLETE]
        assert len(done) >= minimum, cell
        for trial in mine:
            if trial.state == TrialState.PRUNED:
                assert trial.datetime_complete is not None
                before = sum(d is not None and d <= trial.datetime_complete for d in done)
                assert before >= minimum, (cell, trial.number)

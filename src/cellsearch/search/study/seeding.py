"""A warm start's seeds: which earlier trials may seed a study, chosen once, kept with it.

A study whose spec has ``warm_start: {from: [names], top_k: N}``
(:mod:`cellsearch.search.study.warm_start`) is seeded when it is made: :func:`choose`
takes the ``top_k`` best completed search trials of each of its cell types from the
studies named, together, and the result (:class:`WarmSeeds`) is kept as a system
attribute of the new Optuna study (:data:`SNAPSHOT_KEY`), so that the seeds stay what
they were when the earlier studies change or are deleted, and travel with the study when
it is exported. A seed keeps only what a sampler reads: the cell type, the parameters and
the objective value.

Why seeds are shown to the sampler and never added to the study: a trial added to the new
study would be one of its trials to every reader (counts, the ledger's budget, deals, the
pruner, the report's draws, optuna-dashboard), each of which would have to leave it out
again. Shown only to the sampler (:func:`cellsearch.search.study.sampling.make_sampler`,
through the per-cell view of :func:`cellsearch.search.optuna_adapter.cell_view`), a seed
is no trial of the study by construction: it uses no budget, holds no deal, is never
pruned against and never a draw. Only adaptive draws see them: the random draws that the
tests between cell types rest on stay independent of everything, seeds included. Each
search trial that was proposed with seeds records how many (``warm_start``).

Two studies' trials can seed each other when their search spaces search the same
hyperparameters, of the same kinds, for the cell types they share (ranges may differ: a
trial outside this study's ranges is left out) and their objectives agree
(:func:`problems`; the service also checks that the metric measures the same quantity on
both tasks).
"""

from __future__ import annotations

import datetime as dt
import math
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import FrozenTrial, TrialState

from cellsearch.search.errors import FieldError
from cellsearch.search.optuna_adapter import study_system_attr
from cellsearch.search.record import CELL_PARAM, Attr, cell_of, finite, is_reevaluation
from cellsearch.search.study.hyperparameters import in_use
from cellsearch.search.study.param_forms import FloatRange, IntRange, Param, choices
from cellsearch.search.study.sampling import STARTUP_TRIALS, random_rounds
from cellsearch.search.study.spec import StudySpec

SNAPSHOT_KEY = "cellsearch:warm_start"
"""The Optuna study system attribute that holds a study's seeds (JSON)."""
_FROM = ("warm_start", "from")
_SEED_TIME = dt.datetime(2000, 1, 1)  # a seed's datetimes: Optuna wants some, none reads them


@dataclass(frozen=True)
class Seed:
    """One earlier trial as a sampler sees it."""

    study: str
    number: int
    cell_type: str
    value: float
    params: dict[str, Any]


@dataclass(frozen=True)
class Source:
    """An earlier study named by a warm start: its spec and its completed trials."""

    name: str
    spec: StudySpec
    trials: Sequence[FrozenTrial]


@dataclass(frozen=True)
class WarmSeeds:
    """The seeds of a study, as chosen when it was made.

    Attributes:
        sources: The studies named, in order.
        top_k: Seeds per cell type at most.
        seeds: The chosen trials, by cell type (the study's order), best first.
        left_out: Completed trials of a shared cell type left out because a parameter lay
            outside this study's search space.
    """

    sources: tuple[str, ...]
    top_k: int
    seeds: tuple[Seed, ...]
    left_out: int = 0
    _trials: dict[str | None, list[FrozenTrial]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def per_cell(self) -> dict[str, int]:
        """How many seeds each cell type has."""
        counts: dict[str, int] = {}
        for seed in self.seeds:
            counts[seed.cell_type] = counts.get(seed.cell_type, 0) + 1
        return counts

    def trials(self, spec: StudySpec, cell: str | None) -> list[FrozenTrial]:
        """The seeds of ``cell`` (None: of every cell type) as finished trials in ``spec``'s
        search space, numbered -1, -2... (no trial of any study has such a number)."""
        if cell not in self._trials:
            chosen = [s for s in self.seeds if cell is None or s.cell_type == cell]
            self._trials[cell] = [_trial(spec, s, -1 - i) for i, s in enumerate(chosen)]
        return self._trials[cell]

    def to_json(self) -> dict[str, Any]:
        """The seeds as stored (:data:`SNAPSHOT_KEY`)."""
        return {
            "sources": list(self.sources),
            "top_k": self.top_k,
            "left_out": self.left_out,
            "seeds": [
                {"study": s.study, "number": s.number, "cell_type": s.cell_type,
                 "value": s.value, "params": s.params}
                for s in self.seeds
            ],
        }  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WarmSeeds:
        """The seeds stored by :meth:`to_json`."""
        return cls(
            sources=tuple(data["sources"]),
            top_k=int(data["top_k"]),
            seeds=tuple(Seed(**s) for s in data["seeds"]),
            left_out=int(data.get("left_out", 0)),
        )


def _trial(spec: StudySpec, seed: Seed, number: int) -> FrozenTrial:
    distributions = cell_distributions(spec, seed.cell_type)
    return FrozenTrial(
        number=number,
        trial_id=number,
        state=TrialState.COMPLETE,
        value=None,
        values=[seed.value],
        datetime_start=_SEED_TIME,
        datetime_complete=_SEED_TIME,
        params=dict(seed.params),
        distributions={name: distributions[name] for name in seed.params},
        user_attrs={Attr.CELL_TYPE: seed.cell_type},
        system_attrs={},
        intermediate_values={},
    )


def cell_distributions(spec: StudySpec, cell: str) -> dict[str, BaseDistribution]:
    """The Optuna distribution of each parameter a trial of ``cell`` samples in ``spec``:
    the cell type, the table's entries in use that are not fixed, the cell's options (as
    :func:`cellsearch.search.trial.space.suggest_config` suggests them; a test holds the
    two together)."""
    found: dict[str, BaseDistribution] = {CELL_PARAM: CategoricalDistribution(spec.cell_types)}
    for entry in in_use(spec.space.table, spec.param_budget):
        distribution = _distribution(entry.kind, spec.space.param(entry.name))
        if distribution is not None:
            found[entry.name] = distribution
    for name, param in spec.space.cell_options.get(cell, {}).items():
        distribution = _distribution("float", param)
        if distribution is not None:
            found[f"{cell}.{name}"] = distribution
    return found


def _distribution(kind: str, param: Param) -> BaseDistribution | None:
    """A parameter's distribution; None for a fixed number (not sampled)."""
    if kind == "choice":
        return CategoricalDistribution(choices(param))  # type: ignore[arg-type]
    if isinstance(param, IntRange):
        return IntDistribution(param.low, param.high, log=param.log)
    if isinstance(param, FloatRange):
        return FloatDistribution(param.low, param.high, log=param.log)
    if isinstance(param, list):
        return CategoricalDistribution(param)
    return None


def _inside(distribution: BaseDistribution, value: Any) -> bool:
    """Whether ``value`` is one a trial sampling ``distribution`` could have drawn."""
    if isinstance(distribution, CategoricalDistribution):
        return any(type(value) is type(c) and value == c for c in distribution.choices)
    if isinstance(distribution, IntDistribution):
        return isinstance(value, int) and distribution.low <= value <= distribution.high
    if isinstance(distribution, FloatDistribution):
        number = value if isinstance(value, float) else math.nan
        return distribution.low <= number <= distribution.high
    return False


def _kinds(spec: StudySpec, cell: str) -> dict[str, str]:
    """The kind of each parameter ``cell`` samples (the cell type itself left out)."""
    kinds = {"CategoricalDistribution": "a choice", "IntDistribution": "an integer range"}
    return {
        name: kinds.get(type(d).__name__, "a real range")
        for name, d in cell_distributions(spec, cell).items()
        if name != CELL_PARAM
    }


def space_problem(spec: StudySpec, source: StudySpec) -> str | None:
    """Why ``source``'s trials cannot seed ``spec`` (no shared cell type, another set of
    hyperparameters or another kind of one for a shared cell type), or None."""
    shared = [c for c in spec.cell_types if c in source.cell_types]
    if not shared:
        return f"it searches {', '.join(source.cell_types)}: no cell type of this study"
    for cell in shared:
        mine, theirs = _kinds(spec, cell), _kinds(source, cell)
        if mine == theirs:
            continue
        missing = sorted(set(mine) - set(theirs))
        extra = sorted(set(theirs) - set(mine))
        kinds = sorted(n for n in set(mine) & set(theirs) if mine[n] != theirs[n])
        parts = [
            f"does not search {', '.join(missing)}" if missing else "",
            f"also searches {', '.join(extra)}" if extra else "",
            "; ".join(f"searches {n} as {theirs[n]}, this study as {mine[n]}" for n in kinds),
        ]
        return f"its search space differs for {cell}: it " + "; ".join(p for p in parts if p)
    return None  # fmt: skip


def objective_problem(spec: StudySpec, source: StudySpec) -> str | None:
    """Why ``source``'s values are not values of ``spec``'s objective (another metric or
    direction), or None. What the metric measures on each task (a loss of another kind)
    is the service's to check, which knows the tasks' quantities."""
    mine, theirs = spec.objective, source.objective
    if mine == theirs:
        return None
    return (
        f"its objective is {theirs.metric} ({theirs.direction}), this study's "
        f"{mine.metric} ({mine.direction}): its values would mislead the sampler"
    )


def phase_problem(spec: StudySpec) -> str | None:
    """Why ``spec`` has no adaptive draw for seeds to reach (its random phase takes every
    trial of each cell type), or None."""
    rounds = random_rounds(spec)
    if rounds is None or rounds < spec.trials_per_cell:
        return None
    return (
        f"seeds reach only the adaptive draws after the random phase, which takes all "
        f"{spec.trials_per_cell} trials of each cell type here (at least the sampler's "
        f"{STARTUP_TRIALS} start-up trials, or comparison.random_share of them): raise "
        f"budget.n_trials above {rounds * len(spec.cell_types)} or lower "
        "comparison.random_share"
    )


def problems(spec: StudySpec, sources: dict[str, Source | None]) -> list[FieldError]:
    """Every reason ``spec``'s warm start cannot be made from ``sources`` (name -> the
    study, or None when there is no such study); empty when it can."""
    if spec.warm_start is None:
        return []
    errors = []
    phase = phase_problem(spec)
    if phase is not None:
        errors.append(FieldError(("warm_start",), phase, "warm_start_useless"))
    for name in spec.warm_start.from_:
        source = sources.get(name)
        if source is None:
            errors.append(FieldError(_FROM, f"no study named {name!r}", "unknown_study"))
            continue
        for problem in (space_problem(spec, source.spec), objective_problem(spec, source.spec)):
            if problem is not None:
                errors.append(FieldError(_FROM, f"{name}: {problem}", "incompatible_study"))
    if not errors and not choose(spec, list(filter(None, sources.values()))).seeds:
        errors.append(FieldError(_FROM, "the studies named have no completed trial that "
                                 "fits this study's search space", "no_seeds"))  # fmt: skip
    return errors


def choose(spec: StudySpec, sources: Sequence[Source]) -> WarmSeeds:
    """The seeds of ``spec`` from ``sources`` (checked by :func:`problems`): the
    ``top_k`` best completed search trials of each cell type, the sources together (ties:
    the earlier study named, then the lower trial number)."""
    assert spec.warm_start is not None
    sign = -1.0 if spec.objective.direction == "maximize" else 1.0
    ranked: dict[str, list[tuple[float, int, int, Seed]]] = {c: [] for c in spec.cell_types}
    spaces = {c: cell_distributions(spec, c) for c in spec.cell_types}
    left_out = 0
    for order, source in enumerate(sources):
        for trial in source.trials:
            value = finite(trial.value) if trial.values else None
            cell = cell_of(trial)
            if trial.state != TrialState.COMPLETE or value is None or cell not in ranked:
                continue
            if is_reevaluation(trial):
                continue
            space = spaces[cell]
            if set(trial.params) != set(space) or not all(
                _inside(space[name], v) for name, v in trial.params.items()
            ):
                left_out += 1
                continue
            seed = Seed(source.name, trial.number, cell, value, dict(trial.params))
            ranked[cell].append((sign * value, order, trial.number, seed))
    top_k = spec.warm_start.top_k
    chosen = [entry[3] for cell in spec.cell_types for entry in sorted(ranked[cell])[:top_k]]
    return WarmSeeds(tuple(s.name for s in sources), top_k, tuple(chosen), left_out)


_KEPT: weakref.WeakKeyDictionary[optuna.Study, WarmSeeds | None] = weakref.WeakKeyDictionary()


def seeds_of(study: optuna.Study, spec: StudySpec) -> WarmSeeds | None:
    """The seeds kept with ``study`` (None without a warm start), read once per study
    object: they never change."""
    if spec.warm_start is None:
        return None
    if study not in _KEPT:
        stored = study_system_attr(study, SNAPSHOT_KEY)
        _KEPT[study] = None if stored is None else WarmSeeds.from_json(stored)
    return _KEPT[study]

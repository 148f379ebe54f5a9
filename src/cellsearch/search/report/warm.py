"""What the report says of a warm start, and the trials its tests leave out because of one.

A warm-started study's sampler was shown the best trials of earlier studies
(:mod:`cellsearch.search.study.seeding`). Those seeds are not trials of the study, so no
statistic of the report sees them. The study's own trials that were proposed with seeds
(they record how many: :attr:`~cellsearch.search.record.Attr.WARM_START`) are adaptive
draws: they count toward the budget and the best values like every adaptive draw, and the
tests between cell types, which rest on independent draws, never use them.
"""

from __future__ import annotations

from collections.abc import Sequence

from optuna.trial import FrozenTrial

from cellsearch.search.record import Attr


def seeded(trial: FrozenTrial) -> bool:
    """Whether ``trial`` was proposed by a sampler shown a warm start's seeds."""
    return bool(trial.user_attrs.get(Attr.WARM_START))


def tested(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    """The trials a test between cell types may use: those not proposed from seeds."""
    return [t for t in trials if not seeded(t)]


def note(trials: Sequence[FrozenTrial]) -> str | None:
    """The report's note on the warm start, once a trial was proposed from seeds (None
    before, and without one)."""
    shown = [int(t.user_attrs[Attr.WARM_START]) for t in trials if seeded(t)]
    if not shown:
        return None
    return (
        f"Warm start: {len(shown)} adaptive draw(s) of this study were proposed by a sampler "
        f"also shown up to {max(shown)} of the best trials of its cell type from earlier "
        "studies (the spec's warm_start names them). Those earlier trials are not draws of "
        "this study: they used none of its budget, hold no deal and are in none of its "
        "statistics. The trials proposed from them are the study's own adaptive draws; the "
        "tests between cell types never use them, and rest on each cell type's random draws, "
        "which no seed reached."
    )

"""The ``warm_start`` part of a study spec: earlier studies whose best trials seed the sampler.

Kept apart from :mod:`cellsearch.search.study.spec`, which declares the field and calls
:func:`check_warm_start` as its validator. ``warm_start: {from: [names], top_k: N}``
shows the sampler's adaptive draws the ``top_k`` best completed trials of each cell type
of the studies named (:mod:`cellsearch.search.study.seeding` chooses them when the study
is made and keeps them with it). Those trials are never trials of the new study: they use
no budget, hold no deal and are no draw; the random draws that the comparison's tests
rest on never see them.

What the spec alone decides is checked here: a study does not seed itself, and a warm
start needs a sampler that reads earlier trials (tpe or gp) and, with several cell types,
balanced allocation (whose random phase keeps the tests' draws unseeded). What needs the
other studies (they exist, their objective and search space agree with this one's) and
the length of the random phase is checked when the study is submitted
(:func:`cellsearch.search.study.seeding.problems`).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationInfo,
    field_validator,
    model_serializer,
)

from cellsearch.search.study.param_forms import StrictModel, choices

MAX_SOURCES = 10
"""Studies one warm start may name."""
MAX_TOP_K = 100
"""Seeds per cell type at most."""
SEEDING_SAMPLERS = ("tpe", "gp")
"""Samplers that read earlier trials (random and qmc draw without them)."""
DESCRIPTION = (
    "Seed the sampler's adaptive draws with the top_k best completed trials of each cell "
    "type of earlier studies on this server (from: their names). The studies must exist, "
    "share at least one cell type, search the same hyperparameters (ranges may differ; "
    "trials outside this study's ranges are left out) and have the same objective. Needs "
    "sampler tpe or gp and, with several cell types, allocation balanced with adaptive "
    "draws after the random phase. The earlier trials are not trials of this study: no "
    "budget, no deal, no draw of the tests. null: off."
)

StudyName = Annotated[str, Field(min_length=1, max_length=64)]


class WarmStart(StrictModel):
    """Earlier studies whose best trials seed this study's sampler."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, strict=True, allow_inf_nan=False, populate_by_name=True
    )

    from_: list[StudyName] = Field(
        alias="from",
        min_length=1,
        max_length=MAX_SOURCES,
        description="Names of earlier studies on this server, each once.",
        json_schema_extra={"uniqueItems": True},
    )
    top_k: int = Field(
        default=10,
        ge=1,
        le=MAX_TOP_K,
        description="Best completed trials of each cell type, over the studies named together.",
    )

    @field_validator("from_")
    @classmethod
    def _once_each(cls, names: list[str]) -> list[str]:
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"name each study once ({', '.join(repeated)} repeated)")
        return names

    @model_serializer(mode="wrap")
    def _by_alias(self, handler: SerializerFunctionWrapHandler) -> Any:
        """Dumped as written (``from``), so that a stored spec validates again."""
        data = handler(self)
        if isinstance(data, dict) and "from_" in data:
            data = {"from": data.pop("from_"), **data}
        return data


def check_warm_start(cls: Any, value: WarmStart | None, info: ValidationInfo) -> WarmStart | None:
    """The spec's validator of ``warm_start`` (declared after the fields it reads, which
    ``info.data`` holds when they are valid).

    Raises:
        ValueError: the study names itself, or its sampler or allocation cannot use seeds.
    """
    if value is None:
        return value
    data = info.data
    name = data.get("name")
    if name is not None and name in value.from_:
        raise ValueError(f"from: a study cannot warm start from itself ({name!r})")
    sampler = data.get("sampler")
    if sampler is not None and sampler not in SEEDING_SAMPLERS:
        raise ValueError(
            f"needs sampler tpe or gp: sampler {sampler!r} draws every trial without looking "
            "at earlier ones, so seeds would change nothing"
        )
    space = data.get("space")
    cells = choices(space.cell_type) if space is not None else []
    if data.get("allocation") == "adaptive" and len(cells) > 1:
        raise ValueError(
            "needs allocation balanced: under adaptive allocation every trial is a draw of "
            "the tests between cell types, and trials proposed from seeds may not be"
        )
    return value

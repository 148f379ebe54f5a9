"""The Optuna versions the adapter was written and tested against, and its one error.

Optuna's private modules and attributes carry no compatibility promise: any release may
move them. The adapter names the release series (``major.minor``) whose internals it was
checked against; a test fails when the installed Optuna is not among them, so that an
upgrade makes a person run the adapter's tests (and
:func:`~cellsearch.search.optuna_adapter.check_internals`) before it ships.
"""

from __future__ import annotations

from collections.abc import Sequence

import optuna

from cellsearch.search.errors import OptunaInternalsError

# Release series the adapter's tests passed on, each with its internals checked (the lowest is
# the floor of ``optuna>=`` in pyproject.toml, the highest the one it was developed on).
TESTED_OPTUNA: tuple[str, ...] = ("4.5", "4.6", "4.7", "4.8", "4.9", "5.0", "5.1")


def series(version: str) -> str:
    """The ``major.minor`` series of an Optuna version string (``"5.1.0"`` -> ``"5.1"``)."""
    return ".".join(version.split(".")[:2])


def is_tested(version: str | None = None) -> bool:
    """Whether ``version`` (default: the installed Optuna) is of a tested series."""
    return series(version or optuna.__version__) in TESTED_OPTUNA


def internals_error(problems: Sequence[str]) -> OptunaInternalsError:
    """One error naming every moved internal, the installed version and the tested ones."""
    listed = "\n".join(f"  - {problem}" for problem in problems)
    return OptunaInternalsError(
        f"Optuna {optuna.__version__} lacks internals that cellsearch's Optuna adapter "
        f"(cellsearch.search.optuna_adapter) relies on:\n{listed}\n"
        f"The adapter was written and tested against Optuna {', '.join(TESTED_OPTUNA)}: "
        "install one of those, or update the adapter and its tests for this version."
    )

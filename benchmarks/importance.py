"""Benchmark with a known answer: can an importance evaluator tell a finding from noise?

Simulated studies shaped like the quick start: three cell types in rotation (balanced
allocation), the hidden size (16..64, log) and the learning rate (1e-3..3e-2, log) drawn
at random. No training: each trial's value is known. Three worlds:

- ``cell``: the cell type alone decides the objective (offsets -a, 0, +a for lstm, gru,
  rnn_tanh) plus trial noise;
- ``lr``: the learning rate alone decides it (a bowl in log10(lr) around the middle of
  its range, minimum at the centre) plus trial noise;
- ``null``: nothing does (pure noise).

In ``cell`` and ``lr`` the deciding parameter explains ``--effect`` of the objective's
variance (default 0.5; the rest is noise of unit variance). Each evaluator turns a
study's completed trials into one number per parameter; the report's procedure then
tests each against its null under ``--permutations`` permuted objective values
(:func:`cellsearch.search.report.importance_stats.calls`: one-sided permutation p-values,
Holm over the parameters, level 0.05). Evaluators:

- ``anova``: the report's binned functional ANOVA on ranks
  (:mod:`cellsearch.search.report.importance_stats`);
- ``ped-anova``: optuna's ``PedAnovaImportanceEvaluator`` (top 10% of the trials),
  unnormalised;
- ``fanova``: optuna's ``FanovaImportanceEvaluator`` (``--fanova-trees`` trees, seeded),
  unnormalised.

Per evaluator, world and study size: how often the deciding parameter is called
important ("finds"), how often it has the largest share ("first"), how often another
parameter is called important ("false": any call at all in ``null``), and the median
largest share ("first" in ``null``: ``cell_type`` has it). The evaluator chosen is the one
that finds the deciding parameter in at least 80% of studies (both worlds) at the
smallest size while its false calls without any effect (``null``, pooled over the sizes)
are not above 5% (:func:`above_level`; ties: the cheaper); that size is the report's
:data:`cellsearch.search.report.importance.MIN_TRIALS_TO_TELL`.

Usage::

    python benchmarks/importance.py                     # anova and ped-anova, 60 studies
    python benchmarks/importance.py --evaluators fanova --studies 20 --sizes 24 60 150
    python benchmarks/importance.py --quick             # a smoke run
"""

from __future__ import annotations

import argparse
import math
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.importance import (
    BaseImportanceEvaluator,
    FanovaImportanceEvaluator,
    PedAnovaImportanceEvaluator,
    get_param_importances,
)
from scipy import stats as sps

from cellsearch.search.optuna_adapter import TrialsStudy
from cellsearch.search.report import importance_stats as istats

CELLS = ("lstm", "gru", "rnn_tanh")
NAMES = ["cell_type", "hidden_size", "learning_rate"]
DISTRIBUTIONS = {
    "cell_type": CategoricalDistribution(CELLS),
    "hidden_size": IntDistribution(16, 64, log=True),
    "learning_rate": FloatDistribution(1e-3, 3e-2, log=True),
}
DECIDES = {"cell": "cell_type", "lr": "learning_rate", "null": None}
LEVEL = 0.05


@dataclass(frozen=True)
class Study:
    """One simulated study: its trials' parameters and values."""

    params: list[dict[str, object]]
    values: np.ndarray


def simulate(world: str, n: int, effect: float, seed: int) -> Study:
    """A study of ``n`` trials in ``world`` (see the module docstring)."""
    rng = np.random.default_rng(seed)
    low, high = math.log10(1e-3), math.log10(3e-2)
    log_lr = rng.uniform(low, high, n)
    hidden = np.round(np.exp(rng.uniform(math.log(16), math.log(64), n))).astype(int)
    cells = [CELLS[i % 3] for i in range(n)]
    scale = math.sqrt(effect / (1.0 - effect)) if effect < 1 else 1.0  # signal sd / noise sd
    signal = np.zeros(n)
    if world == "cell":
        offsets = {"lstm": -1.0, "gru": 0.0, "rnn_tanh": 1.0}  # variance 2/3 over the cells
        signal = np.array([offsets[c] for c in cells]) / math.sqrt(2 / 3)
    elif world == "lr":
        u = (log_lr - (low + high) / 2) / ((high - low) / 2)  # -1..1
        signal = (u**2 - 1 / 3) / math.sqrt(4 / 45)  # a bowl, variance 1 under the uniform
    values = scale * signal + rng.normal(0.0, 1.0, n)
    params = [
        {"cell_type": c, "hidden_size": int(h), "learning_rate": float(10**lr)}
        for c, h, lr in zip(cells, hidden, log_lr, strict=True)
    ]
    return Study(params, values)


def _optuna_stat(
    study: Study, values: np.ndarray, make: Callable[[], BaseImportanceEvaluator]
) -> np.ndarray:
    trials = [
        optuna.trial.create_trial(params=p, distributions=DISTRIBUTIONS, value=float(v))
        for p, v in zip(study.params, values, strict=True)
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = get_param_importances(
            TrialsStudy(trials, False), evaluator=make(), params=NAMES, normalize=False
        )
    return np.array([max(0.0, float(found.get(name, 0.0))) for name in NAMES])


def statistics(
    study: Study, evaluator: str, permutations: int, seed: int, trees: int
) -> tuple[np.ndarray, np.ndarray]:
    """The observed statistic ``(m,)`` and its permutation null ``(P, m)``."""
    rng = np.random.default_rng(seed + 7919)
    if evaluator == "anova":
        design = istats.design_of(study.params, NAMES)
        y = istats.scaled_ranks(study.values)
        observed = istats.effects(design, y)[0]
        return observed, istats.permutation_null(design, y, replicates=permutations, rng=rng)
    makers: dict[str, Callable[[], BaseImportanceEvaluator]] = {
        "ped-anova": PedAnovaImportanceEvaluator,
        "fanova": lambda: FanovaImportanceEvaluator(n_trees=trees, seed=seed),
    }
    make = makers[evaluator]
    observed = _optuna_stat(study, study.values, make)
    null = np.stack(
        [_optuna_stat(study, rng.permutation(study.values), make) for _ in range(permutations)]
    )
    return observed, null


def one_study(job: tuple[str, str, int, float, int, int, int]) -> dict[str, object]:
    """Simulate, evaluate and test one study; what it found."""
    evaluator, world, n, effect, seed, permutations, trees = job
    study = simulate(world, n, effect, seed)
    start = time.perf_counter()
    observed, null = statistics(study, evaluator, permutations, seed, trees)
    seconds = time.perf_counter() - start
    tested = istats.calls(observed, null, LEVEL)
    share = istats.shares(observed[None, :])[0]
    target = DECIDES[world]
    called = {name for name, hit in zip(NAMES, tested.important, strict=True) if hit}
    first = NAMES[int(np.argmax(share))] if share.sum() > 0 else None
    return {
        "finds": target in called if target else False,
        "first": first == target if target else first == "cell_type",
        "false": bool(called - {target}),
        "top_share": float(share.max()),
        "seconds": seconds,
    }


def run(args: argparse.Namespace) -> dict[tuple[str, str, int], dict[str, float]]:
    """Every (evaluator, world, size) row."""
    rows: dict[tuple[str, str, int], dict[str, float]] = {}
    with ProcessPoolExecutor(args.jobs) as pool:
        for evaluator in args.evaluators:
            for n in args.sizes:
                for world in DECIDES:
                    count = (args.null_studies if world == "null" else None) or args.studies
                    offset = 1_000_000 * list(DECIDES).index(world)  # own draws per world
                    jobs = [
                        (evaluator, world, n, args.effect, offset + 1000 * s + n,
                         args.permutations, args.fanova_trees)
                        for s in range(count)
                    ]  # fmt: skip
                    found = list(pool.map(one_study, jobs))
                    rows[(evaluator, world, n)] = {
                        key: float(np.mean([f[key] for f in found]))
                        for key in ("finds", "first", "false", "seconds")
                    } | {
                        "top_share": float(np.median([f["top_share"] for f in found])),
                        "studies": float(len(found)),
                    }
                    r = rows[(evaluator, world, n)]
                    print(
                        f"| {evaluator} | {world} | {n} | {100 * r['finds']:.0f}% | "
                        f"{100 * r['first']:.0f}% | {100 * r['false']:.0f}% | "
                        f"{r['top_share']:.2f} | {1000 * r['seconds']:.0f} ms |",
                        flush=True,
                    )
    return rows


def above_level(calls: int, studies: int) -> bool:
    """Whether ``calls`` false calls in ``studies`` studies show a rate above ``LEVEL``:
    the one-sided 95% Clopper-Pearson lower bound of the rate exceeds it (a test at level
    5% calls in about 5% of studies where nothing matters, so a single row can read 6-7%
    by chance; the pooled count over sizes is what is judged)."""
    if calls == 0:
        return False
    return float(sps.beta.ppf(0.05, calls, studies - calls + 1)) > LEVEL


def choose(rows: dict[tuple[str, str, int], dict[str, float]], order: list[str]) -> str:
    """The evaluator that finds the deciding parameter in 80% of studies soonest, with
    false calls at most 5% everywhere; and that size."""
    best: tuple[int, float, str] | None = None
    for evaluator in order:
        sizes = sorted({n for e, _, n in rows if e == evaluator})
        nulls = [rows[(evaluator, "null", n)] for n in sizes]
        calls = sum(round(r["false"] * r["studies"]) for r in nulls)
        studies = int(sum(r["studies"] for r in nulls))
        print(f"{evaluator}: false calls without effect {calls} of {studies} studies "
              f"({calls / studies:.1%})")  # fmt: skip
        if above_level(calls, studies):
            print(f"{evaluator}: false calls above {LEVEL:.0%} without effect: not chosen")
            continue
        enough = [
            n for n in sizes
            if all(rows[(evaluator, w, n)]["finds"] >= 0.8 for w in ("cell", "lr"))
        ]  # fmt: skip
        if not enough:
            print(f"{evaluator}: finds the deciding parameter in 80% at no size tried")
            continue
        cost = float(np.mean([rows[(evaluator, w, n)]["seconds"] for w in DECIDES for n in sizes]))
        key = (enough[0], cost, evaluator)
        print(f"{evaluator}: 80% from {enough[0]} trials; {1000 * cost:.0f} ms per study")
        best = key if best is None or key < best else best
    if best is None:
        return "none: no evaluator meets the target"
    return f"{best[2]}, from {best[0]} completed trials"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--evaluators", nargs="+", default=["anova", "ped-anova"],
                        choices=["anova", "ped-anova", "fanova"])  # fmt: skip
    parser.add_argument("--sizes", nargs="+", type=int, default=[24, 36, 60, 90, 150])
    parser.add_argument("--studies", type=int, default=60, help="studies per row")
    parser.add_argument("--null-studies", type=int, default=None,
                        help="studies per row of the null world (default: --studies)")  # fmt: skip
    parser.add_argument("--effect", type=float, default=0.5,
                        help="share of the variance the deciding parameter explains")  # fmt: skip
    parser.add_argument("--permutations", type=int, default=199)
    parser.add_argument("--fanova-trees", type=int, default=16)
    parser.add_argument("--jobs", type=int, default=None, help="processes (default: CPUs)")
    parser.add_argument("--quick", action="store_true", help="8 studies, sizes 24 and 60")
    args = parser.parse_args()
    if args.quick:
        args.studies, args.sizes = 8, [24, 60]
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(
        f"{args.studies} studies per row ({args.null_studies or args.studies} without "
        f"effect); effect {args.effect}; {args.permutations} permutations; level {LEVEL}\n"
    )
    print("| evaluator | world | trials | finds | first | false | median top share | time |")
    print("|---|---|---|---|---|---|---|---|")
    rows = run(args)
    print("\nchosen:", choose(rows, args.evaluators))


if __name__ == "__main__":
    main()

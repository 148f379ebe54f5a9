"""Benchmark with a known answer: does pruning change which cell type the report names?

No training. Each simulated study searches three cell types with known learning-curve
models; the slow starter (``lstm`` here: it sits at the baseline for its first epochs)
has the lowest floor, so it is the true winner. Each trial runs through the real code
path of a worker, one trial at a time: the repo's sampler (:func:`make_sampler`, balanced
allocation, per-cell TPE), the pruner under test, ``trial.report`` and
``trial.should_prune`` after every epoch, then ``build_report`` on the finished trials.

A trial's hyperparameters matter: the learning rate and hidden size move its floor
(a quadratic penalty around each cell's optimum), its speed and its noise (which grows
away from the optimum), so a cell type's result depends on how well it was tuned.
Every epoch's value carries noise as well, and a completed trial's value is its best
epoch, as in the worker. Random numbers are drawn per (study, trial number), so the
pruners are compared on common random numbers.

Usage::

    python benchmarks/fairness.py               # 200 studies per pruner
    python benchmarks/fairness.py --quick       # 20 studies: a smoke run
    python benchmarks/fairness.py --studies 50 --trials 90 --variants all
    python benchmarks/fairness.py --trials 30 120 240 --jobs 2   # sizes side by side

With ``none`` and ``cell`` among the variants, each size ends with the check of issue
11's target (:func:`target_check`): per-cell Hyperband names the true winner within 3
points as often as no pruning, at no more than half its epochs.

Outcome of a study, read from the report: the report *names* a cell type when its
verdict says "<cell> is best" or "<cell> leads" (:func:`named_cell`); a *significant*
naming is one backed by a corrected test ("is best", or "leads: better than ...").
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import os
import re
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import optuna
from optuna.trial import TrialState

from cellsearch.search.report import ReportContext, StudyReport, build_report
from cellsearch.search.study.limits import parse_spec
from cellsearch.search.study.pruning import global_pruner, make_pruner
from cellsearch.search.study.sampling import draw_attrs, make_sampler, random_rounds
from cellsearch.search.study.sampling import make_pruner as spec_pruner
from cellsearch.search.study.spec import RANDOM_SHARE, StudySpec

BASELINE = 1.0  # every curve starts here (the trivial predictor's loss)
LR_RANGE = (1e-4, 1e-1)
HIDDEN_RANGE = (16, 256)


@dataclass(frozen=True)
class CellModel:
    """Learning curves of one simulated cell type.

    Attributes:
        name: A registry cell name (the spec validates it); only a label here.
        floor: Loss reached with ideal hyperparameters, before noise.
        lr_opt: log10 of the best learning rate.
        hidden_opt: log2 of the best hidden size.
        delay: Epochs spent at the baseline before the loss starts to fall.
        tau: Epochs of the exponential fall at the best learning rate.
    """

    name: str
    floor: float
    lr_opt: float
    hidden_opt: float
    delay: int
    tau: float


# True ranking lstm < gru < rnn_tanh; lstm starts slowly, gru fast.
CELLS = (
    CellModel("lstm", floor=0.20, lr_opt=-2.5, hidden_opt=6.5, delay=6, tau=2.5),
    CellModel("gru", floor=0.26, lr_opt=-2.0, hidden_opt=6.0, delay=0, tau=1.5),
    CellModel("rnn_tanh", floor=0.34, lr_opt=-3.0, hidden_opt=5.0, delay=0, tau=2.0),
)
TRUE_WINNER = "lstm"
MODELS = {
    "truth": CELLS,
    # no true winner: every cell type has lstm's curves (any naming is false) ...
    "null": tuple(dataclasses.replace(CELLS[0], name=c.name) for c in CELLS),
    # ... or lstm's floor, rate and size optima, but only lstm starts slowly: a test that
    # leans towards fast starters names gru or rnn_tanh here
    "speed-null": tuple(
        dataclasses.replace(CELLS[0], name=c.name, delay=CELLS[0].delay if i == 0 else 0)
        for i, c in enumerate(CELLS)
    ),
}


def curve(
    cell: CellModel, lr: float, hidden: int, epochs: int, rng: np.random.Generator
) -> np.ndarray:
    """Validation loss of one trial after each epoch, shape ``(epochs,)``."""
    off_lr = math.log10(lr) - cell.lr_opt  # decades from the best learning rate
    off_h = math.log2(hidden) - cell.hidden_opt  # octaves from the best hidden size
    spread = 0.03 * (1.0 + abs(off_lr))  # badly tuned trials are noisier
    floor = cell.floor + 0.06 * off_lr**2 + 0.01 * off_h**2 + abs(rng.normal(0.0, spread))
    floor = min(floor, 0.95 * BASELINE)
    tau = cell.tau * 10 ** (-0.4 * off_lr)  # a larger rate learns faster
    t = np.arange(1, epochs + 1, dtype=np.float64)
    fall = np.exp(-np.clip(t - cell.delay, 0.0, None) / tau)  # 1 during the delay
    noise = rng.normal(0.0, 0.01, size=epochs)
    return floor + (BASELINE - floor) * fall + noise


@dataclass(frozen=True)
class Variant:
    """A pruner under test, built afresh for each trial as the worker does."""

    label: str
    build: Callable[[StudySpec], optuna.pruners.BasePruner]  # the study's spec -> pruner
    share: float = 1.0  # of --trials: the same epochs as a pruned search, for instance


def _epochs(spec: StudySpec) -> int:
    return spec.budget.max_epochs


VARIANTS = {
    "none": Variant("pruner: none", lambda s: global_pruner("none", _epochs(s))),
    "none-half": Variant(
        "pruner: none, half the trials", lambda s: global_pruner("none", _epochs(s)), share=0.5
    ),
    "global": Variant(
        "global Hyperband (no guards)", lambda s: global_pruner("hyperband", _epochs(s))
    ),
    "cell": Variant("per-cell Hyperband (the default)", spec_pruner),
    "cell-all": Variant(
        "per-cell Hyperband, random draws pruned too",
        lambda s: make_pruner("hyperband", _epochs(s), "balanced", 3, keep_random=False),
    ),
    "cell0": Variant(
        "per-cell Hyperband, min 0, random draws pruned too",
        lambda s: make_pruner("hyperband", _epochs(s), "balanced", 0),
    ),
    "global3": Variant(
        "global Hyperband, min 3, last-epoch guard",
        lambda s: make_pruner("hyperband", _epochs(s), "adaptive", 3),
    ),
}


def study_spec(
    seed: int, n_trials: int, epochs: int, sampler: str = "tpe", share: float = RANDOM_SHARE
) -> StudySpec:
    """The spec whose sampler settings the simulated study uses."""
    return parse_spec(
        {
            "name": f"fairness-{seed}",
            "task": {"kind": "adding", "seq_len": 30},
            "space": {
                "cell_type": [c.name for c in CELLS],
                "learning_rate": {"low": LR_RANGE[0], "high": LR_RANGE[1], "log": True},
                "hidden_size": {"low": HIDDEN_RANGE[0], "high": HIDDEN_RANGE[1], "log": True},
            },
            "budget": {"n_trials": n_trials, "max_epochs": epochs},
            "allocation": "balanced",
            "sampler": sampler,
            "comparison": {"random_share": share},
            "seed": seed,
        }
    )


@dataclass(frozen=True)
class Outcome:
    """What one simulated study ended with."""

    named: str | None
    significant: bool
    epochs: int
    completed: dict[str, int]


def run_study(
    seed: int,
    variant: Variant,
    n_trials: int,
    epochs: int,
    n_bootstrap: int,
    cells: tuple[CellModel, ...] = CELLS,
    sampler: str = "tpe",
    share: float = RANDOM_SHARE,
) -> Outcome:
    """One simulated study, trial after trial, then its report."""
    spec = study_spec(seed, n_trials, epochs, sampler, share)
    models = {c.name: c for c in cells}
    study = optuna.create_study(study_name=spec.name, direction="minimize")
    spent = 0
    for index in range(n_trials):
        study.sampler = make_sampler(spec, index)
        study.pruner = variant.build(spec)
        trial = study.ask()
        for key, value in draw_attrs(spec, index).items():  # as the worker does
            trial.set_user_attr(key, value)
        cell = models[str(trial.suggest_categorical("cell_type", list(models)))]
        lr = trial.suggest_float("learning_rate", *LR_RANGE, log=True)
        hidden = trial.suggest_int("hidden_size", *HIDDEN_RANGE, log=True)
        values = curve(cell, lr, hidden, epochs, np.random.default_rng([seed, trial.number]))
        for epoch, value in enumerate(values, start=1):
            trial.report(float(value), epoch)
            if trial.should_prune():
                study.tell(trial, state=TrialState.PRUNED)
                break
        else:
            study.tell(trial, float(values.min()))
        spent += epoch
    trials = study.get_trials(deepcopy=False)
    context = ReportContext(
        study_name=spec.name,
        direction="minimize",
        metric="val_loss",
        n_trials=n_trials,
        cell_types=tuple(models),
        allocation="balanced",
        seed=seed,
        status="completed",
        random_draws=random_rounds(spec),
    )
    report = build_report(trials, context, n_bootstrap=n_bootstrap, importance=False)
    named, significant = named_cell(report)
    completed = {
        c: sum(t.state == TrialState.COMPLETE and t.params["cell_type"] == c for t in trials)
        for c in models
    }
    return Outcome(named, significant, spent, completed)


def named_cell(report: StudyReport) -> tuple[str | None, bool]:
    """The cell type the verdict names, and whether a corrected test backs it.

    A verdict names its leader with "<cell> is best" or "<cell> leads ..."; "is best"
    and "leads: better than" follow a rejected test. Any other sentence names none.
    """
    lead, verdict = report.leader, report.verdict
    if not lead or not re.search(rf"(^|[\s;(]){re.escape(lead)} (is best|leads)\b", verdict):
        return None, False
    significant = bool(re.search(rf"{re.escape(lead)} (is best|leads: better than)", verdict))
    return lead, significant


def summarise(outcomes: list[Outcome]) -> dict[str, float]:
    """Fractions of studies naming the true winner, a wrong cell or none; mean epochs."""
    n = len(outcomes)
    return {
        "true": sum(o.named == TRUE_WINNER for o in outcomes) / n,
        "wrong": sum(o.named not in (None, TRUE_WINNER) for o in outcomes) / n,
        "none": sum(o.named is None for o in outcomes) / n,
        "true_significant": sum(o.named == TRUE_WINNER and o.significant for o in outcomes) / n,
        "epochs": float(np.mean([o.epochs for o in outcomes])),
        "winner_completed": float(np.mean([o.completed[TRUE_WINNER] for o in outcomes])),
        "winner_under_3": sum(o.completed[TRUE_WINNER] < 3 for o in outcomes) / n,
    }


def truth_table(
    n: int, epochs: int, draws: int = 4000, cells: tuple[CellModel, ...] = CELLS
) -> dict[str, float]:
    """Expected best-of-n final value per cell under random search, no pruning."""
    rng = np.random.default_rng(12345)
    out = {}
    for cell in cells:
        finals = np.empty(draws)
        for i in range(draws):
            lr = math.exp(rng.uniform(*np.log(LR_RANGE)))
            hidden = round(math.exp(rng.uniform(*np.log(HIDDEN_RANGE))))
            finals[i] = curve(cell, lr, hidden, epochs, rng).min()
        best = rng.choice(finals, size=(draws, n)).min(axis=1)
        out[cell.name] = float(best.mean())
    return out


def target_check(none: dict[str, float], cell: dict[str, float], points: float = 0.03) -> str:
    """Issue 11's target for one study size, from the :func:`summarise` rows of no
    pruning and per-cell Hyperband: a sentence saying whether it is met, and by how much."""
    share = cell["epochs"] / none["epochs"]
    met = cell["true"] >= none["true"] - points and share <= 0.5
    return (
        f"target ({points:.0%} points, half the epochs): {'met' if met else 'not met'}: "
        f"per-cell Hyperband names the true winner in {cell['true']:.1%} against "
        f"{none['true']:.1%}, at {share:.0%} of the epochs"
    )


def run_variant(
    key: str, studies: int, n_trials: int, args: argparse.Namespace, cells: tuple[CellModel, ...]
) -> list[Outcome]:
    """``studies`` simulated studies under variant ``key`` (seeds 0, 1, ...), spread over
    ``args.jobs`` processes (each study is independent and seeded: the same outcomes)."""
    run = functools.partial(
        _run_seed, key=key, n_trials=n_trials, epochs=args.epochs, n_bootstrap=args.bootstrap,
        cells=cells, sampler=args.sampler, share=args.random_share,
    )  # fmt: skip
    if args.jobs == 1:
        return [run(seed) for seed in range(studies)]
    with ProcessPoolExecutor(args.jobs) as pool:
        return list(pool.map(run, range(studies), chunksize=4))


def _run_seed(
    seed: int,
    *,
    key: str,
    n_trials: int,
    epochs: int,
    n_bootstrap: int,
    cells: tuple[CellModel, ...],
    sampler: str,
    share: float,
) -> Outcome:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    return run_study(seed, VARIANTS[key], n_trials, epochs, n_bootstrap, cells, sampler, share)


def run_size(args: argparse.Namespace, trials: int, studies: int, keys: list[str]) -> None:
    """Print the table of one study size (and the target's check, where it applies)."""
    cells = MODELS[args.model]
    per_cell = trials // len(cells)
    truth = truth_table(per_cell, args.epochs, cells=cells)
    winner = f"true winner {TRUE_WINNER}" if args.model == "truth" else "no true winner"
    print(
        f"{studies} studies x {trials} trials ({per_cell} per cell), "
        f"max {args.epochs} epochs, sampler {args.sampler} (random share "
        f"{args.random_share:.2f}); model {args.model}: {winner}"
    )
    print(
        f"expected best-of-{per_cell} under random search, no pruning: "
        + ", ".join(f"{k} {v:.3f}" for k, v in truth.items())
    )
    print()
    if args.model == "truth":
        print(
            "| pruner | names true winner | (significant) | names a wrong cell | names none "
            "| mean epochs | winner completed | winner < 3 completed |"
        )
        print("|---|---|---|---|---|---|---|---|")
    else:
        print("| pruner | names a cell (all false) | names lstm | names none | mean epochs |")
        print("|---|---|---|---|---|")
    rows: dict[str, dict[str, float]] = {}
    for key in keys:
        variant = VARIANTS[key]
        start = time.perf_counter()
        n_trials = max(len(cells), round(trials * variant.share))
        s = rows[key] = summarise(run_variant(key, studies, n_trials, args, cells))
        if args.model == "truth":
            print(
                f"| {variant.label} | {s['true']:.1%} | {s['true_significant']:.1%} "
                f"| {s['wrong']:.1%} | {s['none']:.1%} | {s['epochs']:.0f} "
                f"| {s['winner_completed']:.1f} | {s['winner_under_3']:.1%} |",
                flush=True,
            )
        else:
            print(
                f"| {variant.label} | {s['true'] + s['wrong']:.1%} | {s['true']:.1%} "
                f"| {s['none']:.1%} | {s['epochs']:.0f} |",
                flush=True,
            )
        print(f"<!-- {key}: {time.perf_counter() - start:.0f} s -->", flush=True)
    if args.model == "truth" and "none" in rows and "cell" in rows:
        print()
        print(target_check(rows["none"], rows["cell"]))
    print(flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--studies", type=int, default=200, help="simulated studies per pruner")
    parser.add_argument("--quick", action="store_true", help="20 studies: a smoke run")
    parser.add_argument(
        "--trials", type=int, nargs="+", default=[30], help="trials per study (one or more sizes)"
    )
    parser.add_argument("--epochs", type=int, default=27, help="max epochs per trial")
    parser.add_argument("--bootstrap", type=int, default=100, help="report bootstrap replicates")
    parser.add_argument(
        "--jobs", type=int, default=os.cpu_count() or 1, help="processes (default: one per CPU)"
    )
    parser.add_argument(
        "--sampler", choices=("tpe", "random"), default="tpe", help="the study's sampler"
    )
    parser.add_argument(
        "--random-share",
        type=float,
        default=RANDOM_SHARE,
        help="comparison.random_share of the simulated studies",
    )
    parser.add_argument(
        "--variants",
        default="none,global,cell",
        help=f"comma list of {', '.join(VARIANTS)}, or all",
    )
    parser.add_argument(
        "--model",
        choices=list(MODELS),
        default="truth",
        help="truth: lstm wins; null: every cell has lstm's curves; speed-null: lstm's "
        "curves everywhere but only lstm starts slowly (in the nulls every naming is false)",
    )
    args = parser.parse_args()
    if args.jobs < 1 or min(args.trials) < 3:
        parser.error("--jobs must be at least 1 and --trials at least 3")
    studies = 20 if args.quick else args.studies
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    keys = list(VARIANTS) if args.variants == "all" else args.variants.split(",")
    unknown = [key for key in keys if key not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    for trials in args.trials:
        run_size(args, trials, studies, keys)


if __name__ == "__main__":
    main()

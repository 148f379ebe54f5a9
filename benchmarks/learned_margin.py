"""What gain over the trivial baseline do trials reach that learned, and that did not?

The figures behind ``comparison.min_gain`` (:mod:`cellsearch.search.report.learning`).
For each task of a suite spec (default ``examples/suite-small.yaml``) and each of its cell
types: ``--per-cell`` configurations drawn at random from the suite's study template
(hidden size, learning rate, batch size), trained to ``budget.max_epochs`` epochs with
the repo's trainer on the task's data (the study's seed), each scored by its *gain*: the
share of the way from the task's baseline (the report's, for the template's objective)
to the objective's best possible value that its best validation value covers. Printed per
task and cell type: the best gain and every trial's, and how many clear the margin.

No worker, no database: one process, one torch thread; a few minutes on a 2-core CPU.

Usage::

    python benchmarks/learned_margin.py                       # the small suite
    python benchmarks/learned_margin.py --tasks 5 6 --per-cell 4
    python benchmarks/learned_margin.py --suite examples/suite-full.yaml --tasks 0
    python benchmarks/learned_margin.py --tasks --extra-task '{"kind": "ucr", "name": "GunPoint"}'
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from cellsearch.models import SequenceModel
from cellsearch.search.report.learning import Margin
from cellsearch.search.report.metric import objective_metric
from cellsearch.search.study.limits import parse_spec
from cellsearch.search.study.param_forms import FloatRange, IntRange
from cellsearch.search.study.spec import StudySpec
from cellsearch.search.tasks import build_task
from cellsearch.search.tasks.baselines import objective_baseline
from cellsearch.search.trial.trainer import TrainingDiverged, train
from cellsearch.search.trial_config import TrainConfig

SUITE = Path(__file__).resolve().parent.parent / "examples" / "suite-small.yaml"


def _draw(param: object, rng: np.random.Generator) -> float:
    """One value of a fixed value, a choice list or a range (log ranges on a log scale)."""
    if isinstance(param, IntRange | FloatRange):
        low, high = float(param.low), float(param.high)
        if param.log:
            value = math.exp(rng.uniform(math.log(low), math.log(high)))
        else:
            value = rng.uniform(low, high)
        return round(value) if isinstance(param, IntRange) else value
    if isinstance(param, list):
        return float(param[int(rng.integers(len(param)))])
    return float(param)  # type: ignore[arg-type]


def gains(spec: StudySpec, per_cell: int) -> tuple[Margin, dict[str, list[float]], float]:
    """Every trial's gain per cell type, the margin they are judged by, and seconds."""
    start = time.perf_counter()
    data = build_task(spec.task, spec.seed)
    baseline = objective_baseline(spec.task, spec.objective.metric, seed=spec.seed)
    metric = objective_metric(spec, baseline.quantities)
    maximize = spec.objective.direction == "maximize"
    margin = Margin.of(baseline.value, low=metric.low, high=metric.high,
                       min_gain=spec.comparison.min_gain, maximize=maximize)  # fmt: skip
    rng = np.random.default_rng(spec.seed)
    space = spec.space
    out: dict[str, list[float]] = {}
    for cell in spec.cell_types:
        found = []
        for i in range(per_cell):
            hidden = int(_draw(space.param("hidden_size"), rng))
            lr = _draw(space.param("learning_rate"), rng)
            batch = int(_draw(space.param("batch_size"), rng))
            torch.manual_seed(i)
            model = SequenceModel(
                cell=cell, input_size=data.meta.input_size, hidden_size=hidden, num_layers=1,
                dropout=0.0, output_size=data.meta.output_size, head=data.meta.head,
            )  # fmt: skip
            config = TrainConfig(learning_rate=lr, batch_size=batch,
                                 max_epochs=spec.budget.max_epochs, seed=i)  # fmt: skip
            try:
                result = train(model, data, config)
            except TrainingDiverged:
                found.append(-math.inf)
                continue
            value = result.best_val_loss
            if spec.objective.metric == "val_metric":
                value = result.best_val_metric
            found.append(margin.gain(value) if margin.known else math.nan)  # type: ignore[arg-type]
        out[cell] = found
    return margin, out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", type=Path, default=SUITE, help="a suite spec (YAML)")
    parser.add_argument("--tasks", type=int, nargs="*", help="task indices (default: all)")
    parser.add_argument("--per-cell", type=int, default=8, help="configurations per cell type")
    parser.add_argument(
        "--extra-task", action="append", default=[], type=json.loads,
        help="a task spec (JSON) to add after the suite's, e.g. one it dropped",
    )  # fmt: skip
    args = parser.parse_args()
    torch.set_num_threads(1)
    suite = yaml.safe_load(args.suite.read_text())
    suite["tasks"] = [*suite["tasks"], *args.extra_task]
    indices = args.tasks if args.tasks else range(len(suite["tasks"]))
    if args.tasks == []:  # --tasks alone: the extra tasks only
        indices = range(len(suite["tasks"]) - len(args.extra_task), len(suite["tasks"]))
    print(f"{args.suite.name}: {args.per_cell} random configurations per cell type\n")
    for index in indices:
        task = suite["tasks"][index]
        spec = parse_spec({**suite["study"], "name": f"task-{index}", "task": task})
        margin, found, seconds = gains(spec, args.per_cell)
        print(f"task {index} {task}: baseline {margin.baseline:.4g}, {seconds:.0f} s")
        for cell, values in found.items():
            best = max(values)
            learned = sum(v >= margin.min_gain for v in values)
            shown = ", ".join(f"{100 * v:.1f}" for v in values)
            print(f"  {cell:10s} best {100 * best:6.1f}%  learned {learned}/{len(values)}  "
                  f"[{shown}]", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()

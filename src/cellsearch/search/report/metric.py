"""What a study's objective is called, and which values it can take.

A study optimises ``val_loss`` (the task's training loss on the validation split) or
``val_metric`` (the task's own metric). Which loss and which metric a task uses is fixed
by its kind (an upload: by its declared kind), so the name is known before any trial
ran: the report, the CLI and optuna-dashboard all call the objective by it ("validation
MSE", not "validation value"). The bounds say which values the quantity can take, so that
no drawn band crosses them (an MSE is never negative, an accuracy never above 1).
"""

from __future__ import annotations

from dataclasses import dataclass

from cellsearch.search.study.spec import StudySpec

# quantity name -> (words, lowest value, highest value); None: unbounded on that side
_QUANTITIES: dict[str, tuple[str, float | None, float | None]] = {
    "mse": ("MSE", 0.0, None),
    "cross_entropy": ("cross-entropy", 0.0, None),
    "bce": ("Bernoulli NLL per step", 0.0, None),
    "nll": ("Bernoulli NLL per step", 0.0, None),
    "accuracy": ("accuracy", 0.0, 1.0),
}
# task kind -> (loss, metric); the trainer's TaskMeta says the same (a test checks)
TASK_QUANTITIES: dict[str, tuple[str, str]] = {
    "adding": ("mse", "mse"),
    "copy": ("cross_entropy", "cross_entropy"),
    "digits": ("cross_entropy", "accuracy"),
    "ucr": ("cross_entropy", "accuracy"),
    "forecast": ("mse", "mse"),
    "chorales": ("bce", "nll"),
}
# an upload's declared kind -> (loss, metric); per-step data may hold classes or values
_UPLOAD_QUANTITIES: dict[str, tuple[str, str]] = {
    "classification": ("cross_entropy", "accuracy"),
    "regression": ("mse", "mse"),
    "forecasting": ("mse", "mse"),
}


@dataclass(frozen=True)
class MetricInfo:
    """The objective of a study, in words.

    Attributes:
        quantity: The loss or metric's short name (``mse``, ``accuracy``...), or None
            where the task does not fix it (an upload whose kind is inferred).
        label: What to call the objective: "validation MSE", "validation accuracy".
        low: The lowest value it can take, or None.
        high: The highest value it can take, or None.
    """

    quantity: str | None
    label: str
    low: float | None = None
    high: float | None = None


def upload_quantities(kind: str, n_classes: int | None) -> tuple[str, str] | None:
    """An uploaded data set's (loss, metric) names from its kind and its classes (the
    service records both at upload): per-step data hold classes or values."""
    if kind == "per_step":
        return ("cross_entropy", "accuracy") if n_classes else ("mse", "mse")
    return _UPLOAD_QUANTITIES.get(kind)


def quantities_of(spec: StudySpec) -> tuple[str, str] | None:
    """The task's (loss, metric) names, or None where only the data can tell."""
    task = spec.task
    if task.kind == "dataset":
        declared = getattr(task, "task", None)
        return _UPLOAD_QUANTITIES.get(declared) if declared else None
    return TASK_QUANTITIES.get(task.kind)


def objective_metric(spec: StudySpec, quantities: tuple[str, str] | None = None) -> MetricInfo:
    """The study's objective in words, with the bounds of its values.

    Args:
        spec: The study's spec.
        quantities: The task's (loss, metric) names where the spec alone does not tell
            them (an upload whose kind is inferred from its data: see
            :func:`upload_quantities`, or the ``quantities`` of a measured baseline).
    """
    found = quantities_of(spec) or quantities
    is_loss = spec.objective.metric == "val_loss"
    if found is None:
        label = "validation loss" if is_loss else "validation metric"
        return MetricInfo(None, label, 0.0 if is_loss else None)  # every loss here is >= 0
    quantity = found[0] if is_loss else found[1]
    words, low, high = _QUANTITIES[quantity]
    return MetricInfo(quantity, f"validation {words}", low, high)


def quantity_label(quantity: str | None, split: str = "test") -> str:
    """A quantity's name in words on a split: ``"test MSE"``, ``"test accuracy"``."""
    if quantity is None:
        return f"{split} metric"
    words = _QUANTITIES.get(quantity, (quantity.replace("_", " "), None, None))[0]
    return f"{split} {words}"

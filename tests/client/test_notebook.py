"""The example notebook runs, top to bottom, against a real server with a worker.

``examples/quickstart.ipynb`` is executed in a Jupyter kernel (nbclient, ipykernel: the
``dev`` extra) against the app served on a loopback port, with one worker thread; a cell
injected after the notebook's ``parameters`` cell shrinks the study to three tiny trials
(one per cell type), so the run takes seconds plus the kernel's start.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from cellsearch.client import Client
from tests.service.live_server import live_server
from tests.service.test_suite_e2e import make_worker

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
QUICK = {
    "name": "notebook-quick",
    "task": {"kind": "adding", "seq_len": 10, "n_train": 64, "n_val": 32, "n_test": 32},
    "budget": {"n_trials": 3, "max_epochs": 2},
}


def _outputs(notebook: Any) -> str:
    """Every text the executed notebook shows (streams, results, displays)."""
    texts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            texts.append(output.get("text", ""))
            texts.append(str(output.get("data", {}).get("text/plain", "")))
            texts.append(str(output.get("data", {}).get("text/html", "")))
    return "\n".join(texts)


@pytest.mark.slow
def test_the_quickstart_notebook_runs_against_a_live_server(
    served: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    notebook = nbformat.read(EXAMPLES / "quickstart.ipynb", as_version=4)
    (at,) = [i for i, c in enumerate(notebook.cells) if "parameters" in c.metadata.get("tags", [])]
    notebook.cells.insert(at + 1, nbformat.v4.new_code_cell(f"OVERRIDES = {QUICK!r}"))
    worker = make_worker(served, keep_models=True)
    thread = threading.Thread(target=worker.run, kwargs={"max_trials": 3}, daemon=True)
    with live_server(served) as url:
        monkeypatch.setenv("CELLSEARCH_API_URL", url)  # the kernel inherits the environment
        monkeypatch.delenv("CELLSEARCH_API_KEY", raising=False)
        thread.start()
        try:
            runner = nbclient.NotebookClient(
                notebook, timeout=300, kernel_name="python3",
                resources={"metadata": {"path": str(EXAMPLES)}},
            )  # fmt: skip
            runner.execute()
        finally:
            worker.stop()
            thread.join(timeout=60)
        report = Client(url).report("notebook-quick")
    shown = _outputs(notebook)
    assert report.study.n_finished == 3 and report.verdict in shown
    assert "3/3 done, completed" in shown  # the wait's status line, updated in place
    assert "('completed', " in shown and "params_learning_rate" in shown
    # the best kept model, downloaded, says where it comes from and predicts
    best = min((c for c in report.cells if c.best), key=lambda c: c.best.value if c.best else 0)
    assert best.best is not None
    assert f"best {best.cell_type}: trial {best.best.trial_number}, test mse" in shown
    assert "application/vnd.plotly.v1+json" in {
        kind
        for cell in notebook.cells
        for o in cell.get("outputs", [])
        for kind in o.get("data", {})
    }


def test_every_cell_of_the_notebook_has_an_id() -> None:
    """nbformat 4.5 requires cell ids (a missing one warns now, and will be an error)."""
    import json

    cells = json.loads((EXAMPLES / "quickstart.ipynb").read_text())["cells"]
    ids = [cell.get("id") for cell in cells]
    assert None not in ids and len(set(ids)) == len(ids)

"""The client stays light: importing it loads neither torch nor the server's packages."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("torch", "optuna", "sqlalchemy", "fastapi", "numpy", "pandas", "cellsearch.service")


def _loaded_after(statement: str) -> list[str]:
    """Which of HEAVY a fresh interpreter has loaded after ``statement``."""
    code = (
        f"import json, sys\n{statement}\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=120)  # fmt: skip
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


def test_the_client_imports_neither_torch_nor_server_packages() -> None:
    statement = (
        "from cellsearch import Client\n"
        "import cellsearch.client, cellsearch.client.frames, cellsearch.client.displays\n"
        "Client('http://127.0.0.1:9')"
    )
    assert _loaded_after(statement) == []


def test_import_cellsearch_loads_the_client_only_when_asked() -> None:
    code = "import sys, cellsearch; print('cellsearch.client' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=120)  # fmt: skip
    assert done.stdout.strip() == "False"

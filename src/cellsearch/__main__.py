"""``python -m cellsearch`` runs the CLI."""

from cellsearch.service.cli import app

app()

"""The ``cellsearch`` command line (typer).

Server-side commands (:mod:`.server`: ``serve``, ``worker``, ``migrate``, ``dashboard``)
talk to the database; client commands (:mod:`.studies`, :mod:`.datasets`,
:mod:`.catalog`, :mod:`.suites`, :mod:`.models`, :mod:`.travel`) talk to the REST API at
``--api-url``
(``CELLSEARCH_API_URL``, with the key of ``--api-key`` or ``CELLSEARCH_API_KEY``) through
the Python client (:class:`cellsearch.client.Client`; :mod:`.client` says its errors) and
print plain text of at most 80 columns (:mod:`.render`,
:mod:`.report_text`, :mod:`.progress`, :mod:`.text`; suites: :mod:`.suite_render`);
``--json`` prints a listing as JSON. API keys (:mod:`.keys`) are made in the database.
"""

from cellsearch.service.cli import (
    catalog,
    datasets,
    keys,
    models,
    server,
    studies,
    suites,
    travel,
)
from cellsearch.service.cli.app import app

__all__ = ["app", "catalog", "datasets", "keys", "models", "server", "studies", "suites", "travel"]

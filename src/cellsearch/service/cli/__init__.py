"""The ``cellsearch`` command line (typer).

Server-side commands (:mod:`.server`: ``serve``, ``worker``, ``migrate``, ``dashboard``)
talk to the database; client commands (:mod:`.studies`, :mod:`.datasets`, :mod:`.suites`)
talk to the REST API at ``--api-url`` (``CELLSEARCH_API_URL``) through :mod:`.client` and
print with :mod:`.render` (suites: :mod:`.suite_render`).
"""

from cellsearch.service.cli import datasets, server, studies, suites
from cellsearch.service.cli.app import app

__all__ = ["app", "datasets", "server", "studies", "suites"]

"""The client of the cellsearch REST API: :class:`Client`.

Its methods carry the names of the CLI's commands and of the API's routes: ``submit``,
``validate``, ``get`` (the CLI's ``show``), ``list``, ``pause``, ``resume``, ``cancel``,
``delete``, ``wait`` (the CLI's ``watch``), ``trials``, ``report``, ``cells``, ``tasks``;
suites under :attr:`Client.suites`, data sets under :attr:`Client.datasets`. Each returns a
typed record (:mod:`.records`, :mod:`.reports`) and raises the typed errors of
:mod:`.errors`.

Kept models are under :attr:`Client.models`: ``list``, ``download`` (a cell type's best or
a trial's, streamed to a file) and ``load`` (a ready PyTorch model; torch is imported
inside that method only). A study travels with ``export`` (one archive) and ``import_``
(the CLI's ``export`` and ``import``).
"""

from __future__ import annotations

import builtins
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

from cellsearch.client._transport import PAGE, Transport, pages
from cellsearch.client.datasets import Datasets
from cellsearch.client.displays import display_for
from cellsearch.client.models import Models
from cellsearch.client.progress import Pace, follow_study
from cellsearch.client.records import Cell, Study, StudyDetail, Task, Trial, Validation, WhoAmI
from cellsearch.client.reports import StudyReport
from cellsearch.client.specs import SpecLike, spec_json
from cellsearch.client.suites import Suites
from cellsearch.client.travel import TRAVEL_TIMEOUT, ImportedStudy, export_study, import_study
from cellsearch.client.trial_list import TrialList

if TYPE_CHECKING:
    import httpx
    import pandas as pd

DEFAULT_URL = "http://127.0.0.1:8000"


class Client:
    """A client of the cellsearch API.

    Args:
        url: The API's root (``http://127.0.0.1:8000``); None reads ``CELLSEARCH_API_URL``,
            as the CLI does, and falls back to the default.
        api_key: An API key; None reads ``CELLSEARCH_API_KEY`` (unset: no key, which an
            open API on loopback accepts); ``""`` sends none whatever the environment says.
        timeout: Seconds to wait for each answer.
        http: An httpx client to send the requests with (proxies, certificates, a test
            transport); its base URL is not used.

    Example::

        from cellsearch import Client

        client = Client()
        study = client.submit("examples/quickstart.yaml", wait=True)
        report = client.report(study.name)
        print(report.verdict)
    """

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        http: httpx.Client | None = None,
    ) -> None:
        url = url or os.environ.get("CELLSEARCH_API_URL") or DEFAULT_URL
        key = os.environ.get("CELLSEARCH_API_KEY") if api_key is None else api_key
        self._transport = Transport(url, key or None, timeout=timeout, http=http)
        self.suites = Suites(self._transport)
        """Suites: ``submit``, ``list``, ``get``, ``wait``, ``report``, lifecycle."""
        self.datasets = Datasets(self._transport)
        """Data sets: ``upload`` (a file, NumPy arrays or a DataFrame), ``list``, ``delete``."""
        self.models = Models(self._transport)
        """Kept models: ``list``, ``download`` (a cell type's best, or a trial's), ``load``."""

    @property
    def url(self) -> str:
        """The API's root URL."""
        return self._transport.root

    def __repr__(self) -> str:
        return f"Client({self.url!r})"

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP connections (those of an ``http`` client given stay open)."""
        self._transport.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Any route of the API (``path`` under ``/api/v1``); its JSON as it came.

        For what the typed methods do not cover; ``kwargs`` go to httpx (``params``,
        ``json``...). Errors are those of :mod:`.errors`.
        """
        return self._transport.request(method, path, **kwargs)

    # --- studies ------------------------------------------------------------------------

    def submit(
        self,
        spec: SpecLike,
        *,
        wait: bool = False,
        progress: bool = True,
        timeout: float | None = None,
    ) -> StudyDetail:
        """Create a study from ``spec`` (a dict, a YAML or JSON path, or a ``StudySpec``).

        With ``wait``, follow it as :meth:`wait` does (``progress``, ``timeout``) and return
        its final state.

        Raises:
            InvalidRequest: the spec is invalid (``errors`` names each field).
            Conflict: a study has the name.
        """
        found = StudyDetail.parse(
            self._transport.request("POST", "/studies", subject="spec", json=spec_json(spec))
        )
        return self.wait(found.name, progress=progress, timeout=timeout) if wait else found

    def validate(self, spec: SpecLike) -> Validation:
        """What submitting ``spec`` would make, checked against the server's limits and
        data sets; nothing is stored (``name_available`` False: submit would give 409)."""
        body = spec_json(spec)
        return Validation.parse(
            self._transport.request("POST", "/studies/validate", subject="spec", json=body)
        )

    def get(self, name: str) -> StudyDetail:
        """A study: status, counts by state and cell type, spec, best trial."""
        return StudyDetail.parse(self._transport.request("GET", f"/studies/{name}"))

    def list(self) -> list[Study]:
        """Every study with its progress, newest first."""
        return [Study.parse(s) for s in pages(self._transport, "/studies")]

    def pause(self, name: str) -> StudyDetail:
        """Pause a study (running trials stop after their epoch and are requeued)."""
        return StudyDetail.parse(self._transport.request("POST", f"/studies/{name}/pause"))

    def resume(self, name: str) -> StudyDetail:
        """Resume a paused study."""
        return StudyDetail.parse(self._transport.request("POST", f"/studies/{name}/resume"))

    def cancel(self, name: str) -> StudyDetail:
        """Cancel a study for good."""
        return StudyDetail.parse(self._transport.request("POST", f"/studies/{name}/cancel"))

    def delete(self, name: str) -> None:
        """Delete a study and all its trials."""
        self._transport.request("DELETE", f"/studies/{name}")

    def wait(
        self,
        name: str,
        *,
        progress: bool = True,
        poll: float = 1.0,
        timeout: float | None = None,
        max_outage: float = 600.0,
    ) -> StudyDetail:
        """Follow a study until it is completed or cancelled; return its final state.

        With ``progress``, one status line as ``cellsearch submit --wait`` shows it,
        updated in place (in a terminal, or in a notebook's cell). An API that stops
        answering is retried for up to ``max_outage`` seconds.

        Raises:
            WaitTimeout: ``timeout`` seconds passed first (the study goes on).
            ApiUnavailable: the API did not answer for ``max_outage`` seconds.
        """
        pace = Pace(now=time.monotonic, sleep=time.sleep, poll=poll, max_outage=max_outage,
                    timeout=timeout)  # fmt: skip
        return follow_study(self, name, display=display_for(progress), pace=pace,
                            reattach=f"client.wait({name!r})")  # fmt: skip

    @overload
    def trials(
        self,
        name: str,
        *,
        state: str | Sequence[str] | None = ...,
        cell_type: str | None = ...,
        as_frame: Literal[False] = ...,
    ) -> TrialList: ...

    @overload
    def trials(
        self,
        name: str,
        *,
        state: str | Sequence[str] | None = ...,
        cell_type: str | None = ...,
        as_frame: Literal[True],
    ) -> pd.DataFrame: ...

    @overload
    def trials(
        self,
        name: str,
        *,
        state: str | Sequence[str] | None = ...,
        cell_type: str | None = ...,
        as_frame: bool,
    ) -> TrialList | pd.DataFrame: ...

    def trials(
        self,
        name: str,
        *,
        state: str | Sequence[str] | None = None,
        cell_type: str | None = None,
        as_frame: bool = False,
    ) -> TrialList | pd.DataFrame:
        """Every trial of a study, by number, filtered by state and cell type.

        Args:
            name: The study.
            state: One state or several (running, waiting, complete, pruned, fail).
            cell_type: Only trials of this cell type.
            as_frame: Return a pandas DataFrame (``cellsearch[pandas]``) instead of records.
        """
        states = [state] if isinstance(state, str) else list(state or [])
        params: dict[str, Any] = {"state": states, "limit": PAGE}
        if cell_type:
            params["cell_type"] = cell_type
        found = TrialList()
        while True:
            page = self._transport.request(
                "GET", f"/studies/{name}/trials", params={**params, "offset": len(found)}
            )
            found += [Trial.parse(t) for t in page["items"]]
            if not page["items"] or len(found) >= page["total"]:
                return found.to_frame() if as_frame else found

    def report(self, name: str) -> StudyReport:
        """The comparison report of the study's cell types (``verdict``, ``cells``,
        ``pairs``, :meth:`~StudyReport.to_frame`, :meth:`~StudyReport.figures`)."""
        return StudyReport.parse(self._transport.request("GET", f"/studies/{name}/report"))

    def report_url(self, name: str) -> str:
        """The address of the study's report page (with plots), for a browser."""
        return self._transport.url(f"/studies/{name}/report.html")

    # --- a study travels ----------------------------------------------------------------

    def export(
        self,
        name: str,
        path: str | os.PathLike[str] | None = None,
        *,
        timeout: float = TRAVEL_TIMEOUT,
    ) -> Path:
        """Save study ``name`` as one archive (spec, trials, report, data set, kept models
        and a MANIFEST of checksums) to ``path`` (default: ``NAME.cellsearch.zip`` here);
        return its path. optuna-dashboard opens its ``optuna.sqlite3`` as it is.

        Raises:
            Conflict: a trial of the study is running (wait, or pause it first).
        """
        return export_study(self._transport, name, path, timeout)

    def import_(
        self,
        path: str | os.PathLike[str],
        *,
        name: str | None = None,
        timeout: float = TRAVEL_TIMEOUT,
    ) -> ImportedStudy:
        """Recreate the study of the archive at ``path`` on this server, named ``name``
        (default: its own name); a study that ran arrives paused.

        Raises:
            Conflict: a study has the name (give another ``name``).
            InvalidRequest: the archive is damaged, tampered with or past the server's
                limits (nothing was stored).
        """
        return import_study(self._transport, path, name, timeout)

    # --- what can be searched, and who asks ---------------------------------------------

    def cells(self) -> builtins.list[Cell]:
        """The recurrent cell types a spec can search (``space.cell_type``)."""
        return [Cell.parse(c) for c in self._transport.request("GET", "/cells")]

    def tasks(self) -> builtins.list[Task]:
        """The task kinds a spec can name (``task.kind``), with their trivial baselines."""
        return [Task.parse(t) for t in self._transport.request("GET", "/tasks")]

    def whoami(self) -> WhoAmI:
        """The name and role of this client's key, and whether the server requires keys."""
        return WhoAmI.parse(self._transport.request("GET", "/whoami"))

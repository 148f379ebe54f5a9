"""Suites through the client (``client.suites``): one study per task from one template,
cell types ranked across tasks. The names are the CLI's (``cellsearch suite submit``...)."""

from __future__ import annotations

import time

from cellsearch.client._transport import Transport, pages
from cellsearch.client.displays import display_for
from cellsearch.client.progress import Pace, follow_suite
from cellsearch.client.records import Suite, SuiteDetail
from cellsearch.client.reports import SuiteReport
from cellsearch.client.specs import SpecLike, spec_json


class Suites:
    """The suites of the API (``/api/v1/suites``)."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    def submit(
        self,
        spec: SpecLike,
        *,
        wait: bool = False,
        progress: bool = True,
        timeout: float | None = None,
    ) -> SuiteDetail:
        """Create a suite from ``spec`` (a dict or a YAML or JSON path): its studies are
        created together or not at all. With ``wait``, follow them until all have ended.

        Raises:
            InvalidRequest: the spec is invalid (each task by index and kind).
            Conflict: the suite's name, or a study name it would make, is taken.
        """
        found = SuiteDetail.parse(self._transport.request("POST", "/suites", json=spec_json(spec)))
        return self.wait(found.name, progress=progress, timeout=timeout) if wait else found

    def list(self) -> list[Suite]:
        """Every suite with the progress of its studies, newest first."""
        return [Suite.parse(s) for s in pages(self._transport, "/suites")]

    def get(self, name: str) -> SuiteDetail:
        """A suite: status, spec, and the progress of each of its studies."""
        return SuiteDetail.parse(self._transport.request("GET", f"/suites/{name}"))

    def pause(self, name: str) -> SuiteDetail:
        """Pause every running study of the suite."""
        return SuiteDetail.parse(self._transport.request("POST", f"/suites/{name}/pause"))

    def resume(self, name: str) -> SuiteDetail:
        """Resume every paused study of the suite."""
        return SuiteDetail.parse(self._transport.request("POST", f"/suites/{name}/resume"))

    def cancel(self, name: str) -> SuiteDetail:
        """Cancel every study of the suite that has not ended."""
        return SuiteDetail.parse(self._transport.request("POST", f"/suites/{name}/cancel"))

    def delete(self, name: str) -> None:
        """Delete a suite and every study it made, with their trials."""
        self._transport.request("DELETE", f"/suites/{name}")

    def wait(
        self,
        name: str,
        *,
        progress: bool = True,
        poll: float = 2.0,
        timeout: float | None = None,
        max_outage: float = 600.0,
    ) -> SuiteDetail:
        """Follow a suite until every study has ended; return its final state.

        Raises:
            WaitTimeout: ``timeout`` seconds passed first (the suite goes on).
            ApiUnavailable: the API did not answer for ``max_outage`` seconds.
        """
        pace = Pace(now=time.monotonic, sleep=time.sleep, poll=poll, max_outage=max_outage,
                    timeout=timeout)  # fmt: skip
        return follow_suite(self, name, display=display_for(progress), pace=pace,
                            reattach=f"client.suites.wait({name!r})")  # fmt: skip

    def report(self, name: str) -> SuiteReport:
        """The cross-task ranking of cell types over the suite's finished studies."""
        return SuiteReport.parse(self._transport.request("GET", f"/suites/{name}/report"))

    def report_url(self, name: str) -> str:
        """The address of the suite's report page, for a browser."""
        return self._transport.url(f"/suites/{name}/report.html")

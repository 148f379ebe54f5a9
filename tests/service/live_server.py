"""A real uvicorn server in a thread, for tests that need real sockets and concurrency."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn


@contextmanager
def live_server(settings: Any) -> Iterator[str]:
    """Serve the app on a free loopback port; yields its base URL (``http://host:port``)."""
    from cellsearch.service.api.app import create_app
    from cellsearch.service.settings import get_settings

    app = create_app()
    app.dependency_overrides[get_settings] = lambda: settings
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)

"""The service's side of the worker runtime.

- :mod:`.ledger`: study lifecycle and the budget ledger in SQL (claims, releases, settling).
- :mod:`.roster`: the roster of live workers (host, device, current trial, last beat).
- :mod:`.runner`: a worker built from settings (the backend the worker loop talks to).
- :mod:`.processes`: workers as child processes (``serve`` and ``worker --gpus``).
"""

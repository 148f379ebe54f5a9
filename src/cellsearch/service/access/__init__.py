"""Who may call the API: keys with roles, when keys are needed, browser sessions (:mod:`.keys`).

The FastAPI side (the dependency every route names) lives in
:mod:`cellsearch.service.api.security`.
"""

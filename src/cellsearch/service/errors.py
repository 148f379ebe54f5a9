"""Errors of the service layer, mapped to HTTP statuses in one handler (api/app.py).

Hierarchy::

    ServiceError
    ├── NotAuthenticated    401: no key, or an unknown or revoked one
    ├── Forbidden           403: the key's role may not do this (or a cross-site request)
    ├── NotFound            404: no such study, dataset or worker
    ├── Conflict            409: a name is taken, or a transition is not allowed
    ├── PayloadTooLarge     413: an upload over the size limit
    ├── InvalidArchive      422: a study archive that is damaged, tampered with or unsafe
    └── StorageUnavailable  503: the database cannot be reached

``cellsearch.search.errors.SpecError`` (an invalid spec) and
``cellsearch.search.errors.DatasetError`` (an invalid upload) map to 422.
"""

from __future__ import annotations


class ServiceError(Exception):
    """Base class of the service's own errors."""


class NotAuthenticated(ServiceError):
    """The request carries no valid API key (or session) and the API requires one."""


class Forbidden(ServiceError):
    """The request's key may not do this (its role, or a resource another key created)."""


class NotFound(ServiceError):
    """A named resource does not exist."""


class Conflict(ServiceError):
    """The request conflicts with the current state (name taken, bad transition)."""


class PayloadTooLarge(ServiceError):
    """An upload exceeds the configured size limit."""


class StorageUnavailable(ServiceError):
    """The database could not be reached or refused the operation."""


class InvalidArchive(ServiceError):
    """A study archive is refused whole: not a readable archive, a file that does not match
    its manifest, a name outside the archive's layout, sizes past the limits."""

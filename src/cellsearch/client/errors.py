"""Every error the client raises, mirroring the API's error bodies.

Hierarchy::

    ClientError                   anything this client raises
    ├── LocalFileError            a spec or data file that cannot be read, or is no mapping
    ├── InvalidUrl                the API's URL has no http:// or https:// in front
    ├── UnreadableResponse        an answer this client cannot read (another schema version)
    ├── WaitTimeout               wait(..., timeout=) ran out (also a TimeoutError)
    ├── ApiUnavailable            worth retrying: the API did not answer, or cannot serve now
    │   ├── ApiUnreachable        no answer at all (connection refused, timeout, DNS)
    │   └── ServiceUnavailable    502, 503, 504 (also an ApiError)
    └── ApiError                  the API answered with an error: status, detail, response
        ├── NotTheApi             the answer is not the cellsearch API's (HTML, no such route)
        ├── AuthenticationError   401: no key, or an unknown or revoked one
        ├── PermissionDenied      403: the key's role may not do this
        ├── NotFound              404: no such study, suite or data set
        ├── Conflict              409: a name is taken, or a transition is not allowed
        ├── PayloadTooLarge       413: an upload over the server's limit
        └── InvalidRequest        422: ``errors`` lists each invalid field (loc, msg, type)

The API's error body is ``{"detail": "a sentence"}``, or for 422 ``{"detail": [{"loc",
"msg", "type"}, ...]}``: :attr:`ApiError.detail` is the sentence, and
:attr:`InvalidRequest.errors` the list as :class:`FieldError` records.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

ROOT_HINT = (
    "is the client's URL (CELLSEARCH_API_URL) the API's root, e.g. http://127.0.0.1:8000, and "
    "not optuna-dashboard's or another site's?"
)


class ClientError(Exception):
    """Base class of every error of :mod:`cellsearch.client`."""


class LocalFileError(ClientError):
    """A local file (a spec, a data set) that cannot be read or has the wrong shape."""


class InvalidUrl(ClientError):
    """The API's URL names no web address (it lacks ``http://`` or ``https://``)."""

    def __init__(self, url: str) -> None:
        self.url = url
        host = url.split("://")[-1]
        super().__init__(
            f"the API URL {url!r} has no http:// or https:// in front, so it names no web "
            f"address; write it as http://{host}"
        )


class UnreadableResponse(ClientError):
    """An answer whose JSON does not have the shape this client reads."""


class WaitTimeout(ClientError, TimeoutError):
    """``wait(..., timeout=)`` ran out before the study or suite ended (it goes on)."""


class ApiUnavailable(ClientError):
    """The API did not answer, or answered that it cannot serve now; worth retrying."""


class ApiUnreachable(ApiUnavailable):
    """No answer: the connection was refused or timed out, or the host is unknown.

    Attributes:
        url: The URL tried (without its query).
        reason: What the network layer said.
    """

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(
            f"cannot reach the API at {url}: {reason}. Is the service up (`cellsearch "
            "serve`), and is the client's URL (CELLSEARCH_API_URL) right?"
        )


@dataclass(frozen=True)
class FieldError:
    """One invalid field of a 422 answer: where (``loc``), what (``msg``), which kind."""

    loc: tuple[str | int, ...]
    msg: str
    type: str

    @property
    def field(self) -> str:
        """The field's dotted path without the request part: ``space.hidden_size``."""
        return ".".join(str(p) for p in self.loc if p != "body")


class ApiError(ClientError):
    """An error answer of the API.

    Attributes:
        status_code: The HTTP status.
        detail: The server's message (for 422, the fields' messages joined).
        response: The HTTP response (None for an error found without asking the server).
        subject: What the request carried, as named in messages: ``spec``, ``upload``,
            ``request``.
    """

    def __init__(
        self,
        detail: str,
        *,
        status_code: int,
        response: httpx.Response | None = None,
        subject: str = "request",
    ) -> None:
        self.detail = detail
        self.status_code = status_code
        self.response = response
        self.subject = subject
        super().__init__(self._text())

    def _text(self) -> str:
        return f"HTTP {self.status_code}: {self.detail}"


class ServiceUnavailable(ApiError, ApiUnavailable):
    """502, 503 or 504: a proxy or the API restarting, or the database away."""


class NotTheApi(ApiError):
    """The answer is not the cellsearch API's: an HTML page, other text, or a 404 or 405
    of a route this API does not have (another site, or another version)."""

    def _text(self) -> str:
        response = self.response
        where = (
            f"{response.request.method} {response.request.url} answered HTTP {self.status_code}"
            if response is not None
            else f"HTTP {self.status_code}"
        )
        return f"{where} with {self.detail}, not the cellsearch API: {ROOT_HINT}"


class AuthenticationError(ApiError):
    """401: the API requires a key and none was sent, or the key is unknown or revoked.

    Attributes:
        key_sent: Whether the request carried a key.
    """

    def __init__(self, detail: str, *, key_sent: bool, **kwargs: Any) -> None:
        self.key_sent = key_sent
        super().__init__(detail, status_code=401, **kwargs)

    def _text(self) -> str:
        if self.key_sent:
            return f"refused (401): {self.detail}. The key given is not valid here."
        return (
            f"refused (401): {self.detail}. Pass api_key= to the Client or set "
            "CELLSEARCH_API_KEY; an admin creates keys with `cellsearch keys create`."
        )


class PermissionDenied(ApiError):
    """403: the key's role may not do this (or the resource is another key's)."""

    def _text(self) -> str:
        return f"refused (403): {self.detail}. Ask an admin for a key with the role this needs."


class NotFound(ApiError):
    """404: no study, suite or data set of that name (or id)."""


class Conflict(ApiError):
    """409: the name is taken, or the change is not allowed in the current state."""


class PayloadTooLarge(ApiError):
    """413: the upload exceeds the server's size limit."""


class InvalidRequest(ApiError):
    """422: the request is not valid; :attr:`errors` names each invalid field.

    Attributes:
        errors: One :class:`FieldError` per invalid field, in the server's order.
    """

    def __init__(self, errors: list[FieldError], **kwargs: Any) -> None:
        self.errors = errors
        detail = "; ".join(f"{e.field}: {e.msg}" for e in errors)
        super().__init__(detail, status_code=422, **kwargs)

    @property
    def field(self) -> str | None:
        """The first invalid field's dotted path (None when the server named none)."""
        return self.errors[0].field if self.errors else None

    @property
    def fields(self) -> list[str]:
        """Every invalid field's dotted path."""
        return [e.field for e in self.errors]

    def _text(self) -> str:
        lines = [f"  {e.field}: {e.msg}" for e in self.errors]
        return f"HTTP 422: invalid {self.subject}\n" + "\n".join(lines)


BY_STATUS: dict[int, type[ApiError]] = {
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
}
"""The error class of each status whose body is one sentence (401 and 422 take more)."""

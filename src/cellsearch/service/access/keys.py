"""API keys with roles, when keys are required, and the browser's signed session cookie.

A key is ``csk_`` followed by 43 URL-safe characters (32 random bytes: 256 bits). The
database keeps only the key's SHA-256 digest and its first characters (the display
prefix, to tell keys apart in listings); a presented key is looked up by its prefix and
its digest compared in constant time. Roles are ordered: ``reader`` (every GET) <
``submitter`` (also creates studies and data sets and acts on those it created) <
``admin`` (everything). Keys are revoked, never deleted, so that a study's
``created_by`` always names a key that existed.

``CELLSEARCH_AUTH`` chooses when keys are required: ``required`` always, ``off`` never
(on purpose), ``auto`` (the default) unless the API listens on a loopback address and no
key was ever created. A revoked key still counts: revoking the last key does not open
the API.

The browser pages sign in with a key once (``/login``) and then carry a session cookie:
``<key id>.<first 16 hex digits of the key's digest>.<expiry>.<HMAC-SHA256>``, signed
with the server's session secret (``CELLSEARCH_SESSION_SECRET``, or one generated on
first use and stored in the ``cellsearch_secrets`` table, so that every API replica on
the same database signs and checks with the same secret). The key behind a session is
read on every request, so revoking it ends its sessions at once.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import re
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Literal

from sqlalchemy import Engine, exists, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from cellsearch.service.errors import Conflict, NotFound, StorageUnavailable
from cellsearch.service.store.db import session_scope
from cellsearch.service.store.tables import ApiKeyRecord, SecretRecord, utcnow

log = logging.getLogger(__name__)
AuthMode = Literal["required", "off", "auto"]
KEY_PREFIX = "csk_"
KEY_BYTES = 32
"""Random bytes of a key: 256 bits."""
DISPLAY_LENGTH = len(KEY_PREFIX) + 8
"""Characters of a key kept in the database to show which key is which."""
MAX_KEY_LENGTH = 128
KEY_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
SESSION_SECRET_NAME = "session"
COOKIE_NAME = "cellsearch_session"
LAST_USED_RESOLUTION = timedelta(minutes=1)
"""``last_used_at`` is written at most once per key and minute (no write per request)."""


class Role(StrEnum):
    """What a key may do; each role may do everything the ones before it may."""

    READER = "reader"
    SUBMITTER = "submitter"
    ADMIN = "admin"

    def allows(self, needed: Role) -> bool:
        """Whether this role may do what ``needed`` may."""
        order = list(Role)
        return order.index(self) >= order.index(needed)


@dataclass(frozen=True)
class Principal:
    """Who makes a request: a key's name and role, or nobody while the API is open.

    Attributes:
        name: The key's name; None when the API is open (no key needed, none given).
        role: The key's role (``admin`` while the API is open).
    """

    name: str | None
    role: Role

    @property
    def owner_filter(self) -> str | None:
        """Whose resources this principal may change: its own name for a submitter; None
        (anyone's) for an admin, or while the API is open."""
        return None if self.name is None or self.role is Role.ADMIN else self.name


OPEN = Principal(name=None, role=Role.ADMIN)
"""The principal of every request while keys are not required."""


# --- keys --------------------------------------------------------------------------------


def new_key() -> str:
    """A fresh random key: the prefix and 256 random bits, URL-safe."""
    return KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)


def key_digest(key: str) -> str:
    """The SHA-256 digest of ``key`` as 64 hex digits (what the database stores)."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def display_prefix(key: str) -> str:
    """The first characters of ``key``, stored and shown to tell keys apart."""
    return key[:DISPLAY_LENGTH]


def create_key(engine: Engine, *, name: str, role: str) -> tuple[ApiKeyRecord, str]:
    """Create a key; the key itself is returned once and never stored.

    Returns:
        The stored record (name, role, prefix, digest) and the key.

    Raises:
        ValueError: the name or the role is not valid.
        Conflict: a key with this name exists (revoked keys keep their names).
    """
    if not re.fullmatch(KEY_NAME_PATTERN, name):
        raise ValueError(
            f"invalid key name {name!r}: 1-64 characters, letters, digits, '.', '_', '-'"
        )
    if role not in tuple(Role):
        raise ValueError(f"unknown role {role!r}; valid: {', '.join(Role)}")
    key = new_key()
    record = ApiKeyRecord(name=name, role=role, prefix=display_prefix(key), digest=key_digest(key))
    try:
        with session_scope(engine) as session:
            session.add(record)
    except IntegrityError:
        raise Conflict(f"a key named {name!r} already exists") from None
    _keys_seen.add(str(engine.url))
    return record, key


def list_keys(engine: Engine) -> list[ApiKeyRecord]:
    """Every key, revoked ones included, oldest first."""
    with session_scope(engine) as session:
        return list(session.scalars(select(ApiKeyRecord).order_by(ApiKeyRecord.id)))


def revoke_key(engine: Engine, name: str) -> ApiKeyRecord:
    """Revoke the key called ``name``; requests with it fail from now on.

    Raises:
        NotFound: no key has that name.
        Conflict: the key was already revoked.
    """
    with session_scope(engine) as session:
        record = session.scalars(select(ApiKeyRecord).where(ApiKeyRecord.name == name)).first()
        if record is None:
            raise NotFound(f"no key named {name!r}")
        if record.revoked_at is not None:
            raise Conflict(
                f"key {name!r} was already revoked at {record.revoked_at:%Y-%m-%d %H:%M}"
            )
        record.revoked_at = utcnow()
        return record


_keys_seen: set[str] = set()
"""Database URLs known to hold a key (keys are never deleted, so this only grows)."""


def keys_exist(engine: Engine) -> bool:
    """Whether a key was ever created on this database (revoked ones count)."""
    url = str(engine.url)
    if url in _keys_seen:
        return True
    with session_scope(engine) as session:
        found = bool(session.scalar(select(exists().where(ApiKeyRecord.id.is_not(None)))))
    if found:
        _keys_seen.add(url)
    return found


def authenticate(engine: Engine, key: str) -> Principal | None:
    """The principal of a presented key, or None for an unknown or revoked key."""
    record = _find_key(engine, key)
    if record is None or record.revoked_at is not None:
        return None
    _touch(engine, record)
    return Principal(name=record.name, role=Role(record.role))


def _find_key(engine: Engine, key: str) -> ApiKeyRecord | None:
    if not key.startswith(KEY_PREFIX) or not DISPLAY_LENGTH < len(key) <= MAX_KEY_LENGTH:
        return None
    digest = key_digest(key)
    with session_scope(engine) as session:
        candidates = session.scalars(
            select(ApiKeyRecord).where(ApiKeyRecord.prefix == display_prefix(key))
        ).all()
    found = None
    for record in candidates:  # every candidate is compared, in constant time each
        if hmac.compare_digest(record.digest.encode(), digest.encode()):
            found = record
    return found


def _touch(engine: Engine, record: ApiKeyRecord) -> None:
    now = utcnow()
    last = record.last_used_at
    if last is not None and last.tzinfo is None:  # SQLite hands back naive UTC
        last = last.replace(tzinfo=now.tzinfo)
    if last is not None and now - last < LAST_USED_RESOLUTION:
        return
    try:
        with session_scope(engine) as session:
            session.execute(
                update(ApiKeyRecord).where(ApiKeyRecord.id == record.id).values(last_used_at=now)
            )
    except (SQLAlchemyError, StorageUnavailable) as exc:  # a busy database: not worth a 503
        log.warning("could not record the use of key %r: %s", record.name, exc)


# --- when keys are required --------------------------------------------------------------


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a bind address or host name) is reachable only from this machine."""
    host = host.strip().strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def keys_required(mode: AuthMode, host: str, engine: Engine) -> bool:
    """Whether requests need a key under ``mode`` on an API that listens on ``host``."""
    if mode == "off":
        return False
    if mode == "required" or not is_loopback(host):
        return True
    return keys_exist(engine)


def startup_line(mode: AuthMode, host: str, engine: Engine) -> str:
    """What ``serve`` says about access when it starts.

    Raises:
        PermissionError: ``auto`` on a non-loopback address and no key exists (the message
            says how to create one, or to set ``CELLSEARCH_AUTH=off`` on purpose).
    """
    if mode == "off":
        return "API keys: off (CELLSEARCH_AUTH=off): the API is OPEN to anyone who can reach it"
    have_keys = keys_exist(engine)
    if mode == "auto" and not is_loopback(host) and not have_keys:
        raise PermissionError(
            f"refusing to serve an open API on {host}, which is not a loopback address: no "
            "API key exists. Create one first with `cellsearch keys create --name NAME "
            "--role admin` (same --database-url), or set CELLSEARCH_AUTH=off to serve "
            "without keys on purpose."
        )
    if keys_required(mode, host, engine):
        if not have_keys:
            return (
                "API keys: required, and none exists yet: every request but /healthz and "
                "/readyz is refused until one is made with `cellsearch keys create`"
            )
        return "API keys: required (Authorization: Bearer KEY or X-API-Key: KEY)"
    return (
        "API keys: none yet, so the API is OPEN on this loopback address "
        "(CELLSEARCH_AUTH=auto; the first `cellsearch keys create` closes it)"
    )


# --- session cookie ----------------------------------------------------------------------

_secrets: dict[str, bytes] = {}


def session_secret(engine: Engine, configured: str | None) -> bytes:
    """The key that signs session cookies: ``configured``, or the stored generated one.

    The first API process to need it generates 32 random bytes and stores them in
    ``cellsearch_secrets``; a concurrent first start by another replica reads the winner's.
    """
    if configured:
        return configured.encode()
    url = str(engine.url)
    if url not in _secrets:
        _secrets[url] = _stored_secret(engine).encode()
    return _secrets[url]


def _stored_secret(engine: Engine) -> str:
    with session_scope(engine) as session:
        found = session.get(SecretRecord, SESSION_SECRET_NAME)
        if found is not None:
            return found.value
    try:
        with session_scope(engine) as session:
            session.add(SecretRecord(name=SESSION_SECRET_NAME, value=secrets.token_hex(32)))
    except IntegrityError:
        pass  # another process stored one first: use theirs
    with session_scope(engine) as session:
        stored = session.get(SecretRecord, SESSION_SECRET_NAME)
        assert stored is not None
        return stored.value


_DIGITS = re.compile(r"[0-9]{1,18}")


def _signature(secret: bytes, payload: str) -> str:
    return hmac.new(secret, payload.encode(), hashlib.sha256).hexdigest()


def sign_session(secret: bytes, record: ApiKeyRecord, *, lifetime_s: float) -> str:
    """A session cookie's value for the key ``record``, valid for ``lifetime_s`` seconds."""
    payload = f"{record.id}.{record.digest[:16]}.{int(time.time() + lifetime_s)}"
    return f"{payload}.{_signature(secret, payload)}"


def read_session(engine: Engine, secret: bytes, value: str) -> Principal | None:
    """The principal of a session cookie; None if forged, expired, or its key revoked."""
    parts = value.split(".")
    if len(parts) != 4 or len(value) > 200:
        return None
    payload, signature = ".".join(parts[:3]), parts[3]
    if not hmac.compare_digest(_signature(secret, payload).encode(), signature.encode()):
        return None
    key_id, fragment, expiry = parts[:3]
    if not (_DIGITS.fullmatch(key_id) and _DIGITS.fullmatch(expiry)) or int(expiry) < time.time():
        return None
    with session_scope(engine) as session:
        record = session.get(ApiKeyRecord, int(key_id))
    if record is None or record.revoked_at is not None or record.digest[:16] != fragment:
        return None
    _touch(engine, record)
    return Principal(name=record.name, role=Role(record.role))


def key_record(engine: Engine, key: str) -> ApiKeyRecord | None:
    """The live (not revoked) record of a presented key, or None (for signing in)."""
    record = _find_key(engine, key)
    return None if record is None or record.revoked_at is not None else record

"""Service settings, read from the environment with the prefix ``CELLSEARCH_``."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from cellsearch.search.study.limits import SpecLimits
from cellsearch.service.artifacts.settings import ArtifactSettings
from cellsearch.service.travel.settings import TravelSettings

DEFAULT_DATABASE_URL = "sqlite:///cellsearch.db"


class Settings(SpecLimits, ArtifactSettings, TravelSettings, BaseSettings):
    """Every knob of the service; each has a ``CELLSEARCH_<NAME>`` variable.

    The input limits (``max_hidden_size``...) are inherited from :class:`SpecLimits`, the
    artifact store's settings from :class:`~cellsearch.service.artifacts.settings.
    ArtifactSettings`, the limits on imported study archives from
    :class:`~cellsearch.service.travel.settings.TravelSettings`.
    """

    model_config = SettingsConfigDict(env_prefix="CELLSEARCH_", extra="ignore", frozen=False)

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        description="SQLAlchemy URL shared by the API, the workers and optuna-dashboard.",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    local_workers: int | None = Field(
        default=None,
        ge=0,
        description="Workers `serve` starts beside it; unset: one per usable CPU, at most 8.",
    )
    api_url: str = Field(
        default="http://127.0.0.1:8000", description="Where the CLI finds the API."
    )
    dashboard_url: str | None = Field(
        default=None,
        description="optuna-dashboard's root (e.g. http://127.0.0.1:8080); report pages link "
        "each trial to it.",
    )
    heartbeat_interval: int = Field(default=10, ge=1, description="Seconds between heartbeats.")
    grace_period: int = Field(
        default=30, ge=2, description="Seconds without a heartbeat before a trial is stale."
    )
    poll_interval: float = Field(
        default=1.0,
        gt=0,
        description="Seconds an idle worker first waits between looks for work; on SQLite, "
        "its polling period.",
    )
    idle_poll_max: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="Longest wait between an idle worker's looks for work on PostgreSQL: the "
        "wait doubles from poll_interval up to this while nothing comes (a notification "
        "wakes it at once).",
    )
    startup_timeout: float = Field(
        default=60.0,
        ge=0,
        description="Seconds a starting worker waits for an unreachable or unmigrated database.",
    )
    torch_threads: Annotated[int, Field(ge=1)] | Literal["auto"] | None = Field(
        default=None,
        description="Torch threads per worker; unset: OMP_NUM_THREADS, else 1; auto: an equal "
        "share of the machine's CPUs among its live workers.",
    )
    db_pool_size: int = Field(
        default=2,
        ge=1,
        description="Connections the API (and the dashboard) keeps open; a worker keeps one.",
    )
    db_max_overflow: int = Field(
        default=2,
        ge=0,
        description="Connections the API may open beyond db_pool_size at busy moments; a "
        "worker opens at most one more (its heartbeat).",
    )
    sqlite_synchronous: Literal["normal", "full"] = Field(
        default="normal",
        description="SQLite's synchronous mode on the service's connections (WAL). normal: "
        "a commit waits for no disk flush; a killed process loses nothing, a power loss "
        "may roll back the last commits before it (trials then rerun, as after a kill). "
        "full: every commit is flushed to disk (about 0.4 ms more a commit).",
    )
    db_pooler: Literal["none", "pgbouncer"] = Field(
        default="none",
        description="What stands between the processes and PostgreSQL: none, or pgbouncer "
        "in transaction mode (psycopg's server-side prepared statements are then turned "
        "off, and idle workers listen on listen_url).",
    )
    listen_url: str | None = Field(
        default=None,
        description="Where idle PostgreSQL workers LISTEN for new work: a direct address of "
        "the server, or a PgBouncer entry in session mode (LISTEN does not pass transaction "
        "mode). Unset: the database URL, unless db_pooler is set; then idle workers poll.",
    )
    max_listeners: int | None = Field(
        default=None,
        ge=1,
        description="With listen_url: at most this many idle workers hold a listening "
        "connection at once (the others poll, backing off to idle_poll_max). Unset: no limit.",
    )
    max_upload_bytes: int = Field(default=100_000_000, ge=1, description="Largest dataset upload.")
    max_suite_tasks: int = Field(default=100, ge=2, description="Most tasks in one suite.")
    report_cache_size: int = Field(
        default=4, ge=0, description="Studies whose built report each API process keeps (0: none)."
    )
    marker_max_age_s: float = Field(
        default=1.0,
        ge=0,
        le=60,
        description="Seconds an API process reuses a study's change marker: cached reports, "
        "summaries and trial pages may lag a finished trial by this much (0: check every "
        "request).",
    )
    trial_page_cache_size: int = Field(
        default=256,
        ge=0,
        description="Pages of finished trials each API process keeps (0: none).",
    )
    api_read_threads: int | None = Field(
        default=None,
        ge=1,
        le=64,
        description="Study and trial reads each API process serves at once (more wait their "
        "turn); unset: 1 on SQLite, 2 on a database server (a second read runs while the "
        "first waits for the server).",
    )
    max_body_bytes: int = Field(
        default=1_000_000, ge=1024, description="Largest request body other than an upload."
    )
    auth: Literal["required", "off", "auto"] = Field(
        default="auto",
        description="When requests need an API key: required, off, or auto (open only on a "
        "loopback address while no key exists).",
    )
    session_secret: SecretStr | None = Field(
        default=None,
        min_length=32,
        description="Signs the browser's session cookies; unset: generated on first start "
        "and stored in the database (shared by every API replica).",
    )
    session_hours: float = Field(
        default=12.0, gt=0, le=720, description="Lifetime of a browser session."
    )
    api_key: SecretStr | None = Field(default=None, description="The CLI's API key.")

    @model_validator(mode="after")
    def _grace_exceeds_interval(self) -> Settings:
        if self.grace_period <= self.heartbeat_interval:
            raise ValueError(
                f"grace_period ({self.grace_period}) must exceed "
                f"heartbeat_interval ({self.heartbeat_interval})"
            )
        return self

    def limits(self) -> SpecLimits:
        """The spec limits this deployment enforces."""
        return SpecLimits(**self.model_dump(include=set(SpecLimits.model_fields)))


@lru_cache
def get_settings() -> Settings:
    """The process's settings (cached; tests override the FastAPI dependency)."""
    return Settings()

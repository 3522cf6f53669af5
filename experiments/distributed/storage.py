"""Where a study lives: a journal file or a database shared by many machines, and its set-up lock.

Two storages:

- the default, an Optuna journal file ``<sweep folder>/study.journal``, shared by worker processes
  on one machine (the journal's file lock serialises their writes);
- any SQLAlchemy URL (``postgresql+psycopg://user@host/db``), shared by workers on many machines.
  Its password may sit in the URL, in ``NEURODRIVE_STORAGE`` or in libpq's ``PGPASSWORD`` /
  ``~/.pgpass``; it is masked wherever a URL is printed or saved.

An RDB storage is opened with Optuna's heartbeat (``HeartbeatSpec``), by which a dead worker's trial
is found (``experiments.distributed.trials``).

Workers started together on an empty PostgreSQL database would all create Optuna's tables (and the
study) at once, and all but one fail on a unique constraint of PostgreSQL's catalogue. Opening the
storage and creating the study therefore run under a PostgreSQL advisory lock
(``StorageTarget.setup_lock``), one worker at a time; the others then find the tables and the study made.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.storages import BaseStorage, RetryHeartbeatStaleTrialCallback

from experiments.config import ConfigError
from experiments.distributed import JOURNAL_NAME, STORAGE_ENV
from experiments.distributed.heartbeat import HeartbeatSpec

# pg_advisory_lock key (a bigint, "ndsweeps") serialising the set-up of Optuna's tables and studies; advisory
# locks are per database, so this one key covers every schema and study in it (each holder keeps it briefly).
SETUP_LOCK_KEY = int.from_bytes(b"ndsweeps", "big")
_setup_locks = threading.local()  # .held: the URLs whose set-up lock this thread holds (the lock nests)


def mask_url(url: str) -> str:
    """The URL with its password replaced by ``***`` (anything unparsable is masked whole)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "***"


def mask_argv(argv: list[str]) -> list[str]:
    """A command line safe to save: every URL argument (``URL`` or ``--opt=URL``) masked."""
    masked = []
    for arg in argv:
        option, sep, value = arg.partition("=") if arg.startswith("--") else ("", "", arg)
        if "://" in value:
            value = mask_url(value)
        masked.append(f"{option}{sep}{value}")
    return masked


@dataclass(frozen=True)
class StorageTarget:
    """A study's storage: an RDB URL, or (``url is None``) the journal file of a sweep folder."""

    journal: Path | None = None
    url: str | None = None

    @classmethod
    def resolve(cls, option: str | None, sweep_dir: Path) -> StorageTarget:
        """``--storage`` (or ``$NEURODRIVE_STORAGE``); neither: the sweep folder's journal file."""
        url = option or os.environ.get(STORAGE_ENV) or None
        if url is None:
            return cls(journal=sweep_dir / JOURNAL_NAME)
        return cls(url=_check_url(url))

    @property
    def is_journal(self) -> bool:
        return self.url is None

    def describe(self) -> str:
        return f"journal file {self.journal}" if self.url is None else mask_url(self.url)

    @contextmanager
    def setup_lock(self) -> Iterator[None]:
        """Hold, across every worker on every machine, the lock under which tables and studies are created.

        PostgreSQL only: a session-level ``pg_advisory_lock`` on a connection of its own, waited for
        without a time limit (each holder only creates or checks tables and a study). Closing that
        connection releases it, as does the holder's death. Nested uses in one thread share the first
        hold (a second connection would wait on the first forever). Other storages get no lock: the
        journal file has its own, and SQLite or MySQL workers racing on an empty database may still clash.
        """
        held: set[str] = _setup_locks.__dict__.setdefault("held", set())
        if self.url is None or self.url in held or _backend(self.url) != "postgresql":
            yield
            return
        from sqlalchemy import create_engine, text
        from sqlalchemy.exc import SQLAlchemyError
        from sqlalchemy.pool import NullPool

        engine = connection = None
        try:
            engine = create_engine(self.url, poolclass=NullPool)  # NullPool: close() really ends the session
            # Autocommit: waiting for and holding the lock leave no transaction open on the server.
            connection = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": SETUP_LOCK_KEY})
        except (SQLAlchemyError, ImportError) as error:
            if connection is not None:
                connection.close()
            if engine is not None:
                engine.dispose()
            raise self._cannot_open(error) from None
        held.add(self.url)
        try:
            yield
        finally:
            held.discard(self.url)
            connection.close()  # ends the session, and with it the lock
            engine.dispose()

    def open(self, heartbeat: HeartbeatSpec | None = None) -> BaseStorage:
        """Open the storage; an unreachable database is a ConfigError naming ``--storage``.

        On PostgreSQL under ``setup_lock``: a storage's first opening creates Optuna's tables.
        """
        if self.url is None:
            from optuna.storages.journal import JournalFileBackend, JournalStorage

            assert self.journal is not None
            self.journal.parent.mkdir(parents=True, exist_ok=True)
            return JournalStorage(JournalFileBackend(str(self.journal)))
        heartbeat = heartbeat or HeartbeatSpec()
        from sqlalchemy.exc import SQLAlchemyError

        try:
            with self.setup_lock(), warnings.catch_warnings():
                warnings.simplefilter("ignore", ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    self.url,
                    engine_kwargs={"pool_pre_ping": True},
                    heartbeat_interval=heartbeat.interval,
                    grace_period=heartbeat.grace_period,
                    heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=heartbeat.max_retry),
                )
        except (SQLAlchemyError, ImportError) as error:
            raise self._cannot_open(error) from None

    def _cannot_open(self, error: Exception) -> ConfigError:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        return ConfigError(f"--storage: cannot open {self.describe()}: {self._scrub(reason)}")

    def _scrub(self, text: str) -> str:
        from sqlalchemy.engine import make_url

        password = make_url(self.url).password if self.url else None
        return text.replace(password, "***") if password else text


def _backend(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).get_backend_name()


def _check_url(url: str) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(f"--storage: {mask_url(url)!r} is not a database URL; expected e.g. "
                          "postgresql+psycopg://user@host:5432/db, sqlite:///file.db, or none for "
                          "the journal file in the sweep folder") from None
    if parsed.drivername == "postgresql":
        # SQLAlchemy's default PostgreSQL driver is psycopg2; NeuroDrive ships psycopg 3.
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)

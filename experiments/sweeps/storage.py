"""Where a study lives, and how a dead worker's trial is found and retried.

Two storages:

- the default, an Optuna journal file ``<sweep folder>/study.journal``, shared by worker processes
  on one machine (the journal's file lock serialises their writes);
- any SQLAlchemy URL (``postgresql+psycopg://user@host/db``), shared by workers on many machines.
  Its password may sit in the URL, in ``NEURODRIVE_STORAGE`` or in libpq's ``PGPASSWORD`` /
  ``~/.pgpass``; it is masked wherever a URL is printed or saved.

A worker killed mid-trial (``kill -9``) leaves a RUNNING trial. On an RDB storage Optuna's heartbeat
finds it (no heartbeat for ``grace_period`` seconds). Optuna 5's ``JournalStorage`` has no heartbeat,
so each journal worker holds an ``flock`` on ``workers/<id>.lock`` for its lifetime and stamps its
trials with that id; the kernel drops the lock when the process dies, however it dies, so a RUNNING
trial whose worker's lock is free belongs to a dead worker. Either way the trial is marked FAIL and
re-queued with the same parameters by Optuna's ``RetryHeartbeatStaleTrialCallback``.

Workers started together on an empty PostgreSQL database would all create Optuna's tables (and the
study) at once, and all but one fail on a unique constraint of PostgreSQL's catalogue. Opening the
storage and creating the study therefore run under a PostgreSQL advisory lock
(``StorageTarget.setup_lock``), one worker at a time; the others then find the tables and the study made.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import threading
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO

import optuna
from optuna.exceptions import ExperimentalWarning, UpdateFinishedTrialError
from optuna.storages import BaseStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from experiments.config import ConfigError
from experiments.sweeps import JOURNAL_NAME, STORAGE_ENV
from experiments.sweeps.spec import HeartbeatSpec

logger = logging.getLogger("neurodrive.sweep")

WORKER_ATTR = "worker"  # trial user attribute: the id of the worker process running it
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


class WorkerLease:
    """An ``flock`` held on ``<sweep>/workers/<id>.lock`` while this worker process lives."""

    def __init__(self, sweep_dir: Path) -> None:
        self.folder = sweep_dir / "workers"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.worker_id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.path = self.folder / f"{self.worker_id}.lock"
        self._handle: IO[str] | None = self.path.open("w")
        fcntl.flock(self._handle, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()  # closing drops the lock
            self._handle = None
            self.path.unlink(missing_ok=True)

    @staticmethod
    def is_alive(sweep_dir: Path, worker_id: str) -> bool:
        """Whether the worker still holds its lock (a missing lock file: it is gone)."""
        path = sweep_dir / "workers" / f"{worker_id}.lock"
        try:
            handle = path.open("r")
        except FileNotFoundError:
            return False
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(handle, fcntl.LOCK_UN)
        path.unlink(missing_ok=True)
        return False


def fail_dead_trials(study: optuna.Study, target: StorageTarget, sweep_dir: Path,
                     heartbeat: HeartbeatSpec) -> list[int]:
    """Mark the RUNNING trials of dead workers FAIL and re-queue them; returns their numbers."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        if not target.is_journal:
            running = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
            optuna.storages.fail_stale_trials(study)  # the storage's callback re-queues them
            failed_trials = study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
            return sorted(t.number for t in failed_trials if t.number in running)

        # Optuna offers no public call to fail another worker's trial; fail_stale_trials does the same.
        retry = RetryHeartbeatStaleTrialCallback(max_retry=heartbeat.max_retry)
        failed = []
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            worker_id = trial.user_attrs.get(WORKER_ATTR)
            if worker_id is None:
                # Created a moment ago, its objective not yet started; or its worker died right then.
                started = trial.datetime_start or datetime.now()
                if (datetime.now() - started).total_seconds() < heartbeat.grace_period:
                    continue
            elif WorkerLease.is_alive(sweep_dir, worker_id):
                continue
            try:
                study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
            except UpdateFinishedTrialError:
                continue  # another worker failed it first, and re-queued it
            retry(study, study._storage.get_trial(trial._trial_id))
            failed.append(trial.number)
        return failed



def requeue_interrupted(study: optuna.Study, number: int | None, interrupted_attr: str, max_retry: int) -> None:
    """Queue an interrupted trial's parameters again (its ``interrupted_attr`` user attribute is True),
    so resuming the study runs it; ``number`` None: nothing was running."""
    if number is None:
        return
    trial = next(trial for trial in study.get_trials(deepcopy=False) if trial.number == number)
    if trial.state == TrialState.FAIL and trial.user_attrs.get(interrupted_attr) is True:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            RetryHeartbeatStaleTrialCallback(max_retry=max_retry)(study, trial)

"""Where a study lives: a journal file or a database shared by many machines, and its set-up lock.

Two storages:

- the default, an Optuna journal file ``<sweep folder>/study.journal``, shared by worker processes
  on one machine (the journal's file lock serialises their writes);
- any SQLAlchemy URL (``postgresql+psycopg://user@host/db``), shared by workers on many machines.
  Its password may sit in the URL (userinfo or a query parameter such as ``password=``), in
  ``NEURODRIVE_STORAGE`` or in libpq's ``PGPASSWORD`` / ``~/.pgpass``; ``mask_url`` masks every
  credential wherever a URL is printed or saved.

An RDB storage is opened with Optuna's heartbeat (``HeartbeatSpec``), by which a dead worker's trial
is found (``experiments.distributed.trials``).

Workers started together on an empty PostgreSQL database would all create Optuna's tables (and the
study) at once, and all but one fail on a unique constraint of PostgreSQL's catalogue. Opening the
storage and creating the study therefore run under a PostgreSQL advisory lock
(``StorageTarget.setup_lock``), one worker at a time; the others then find the tables and the study made.
"""

from __future__ import annotations

import os
import re
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote_plus

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


# Query parameters that carry a credential: libpq's password, sslpassword and passfile, MySQL's passwd, tokens.
_SECRET_KEY = re.compile(r"pass|pwd|secret|token|credential", re.IGNORECASE)
# The start of a URL as SQLAlchemy reads it: the password runs to the first '@'; the rest is host, database, query.
_USERINFO = re.compile(r"(?P<scheme>[\w+]+)://(?:(?P<user>[^:/]*)(?::(?P<password>[^@]*))?@)?(?P<rest>.*)", re.DOTALL)
MASK = "***"


@dataclass(frozen=True)
class _UrlParts:
    """A URL cut where SQLAlchemy cuts it, with its credentials apart."""

    scheme: str
    user: str | None  # None: no userinfo
    password: str | None
    hidden: str | None  # what an unescaped '@' in the password put before the host: secret too
    location: str  # host, port and database
    query: list[str]  # the ``key=value`` pairs

    def secret_values(self) -> list[str]:
        values = [self.password, self.hidden, f"{self.password}@{self.hidden}" if self.hidden else None]
        values += [pair.partition("=")[2] for pair in self.query if _is_secret(pair)]
        return [value for value in values if value]


def _is_secret(pair: str) -> bool:
    key, equals, _ = pair.partition("=")
    return bool(equals) and _SECRET_KEY.search(unquote_plus(key)) is not None


def _split_url(url: str) -> _UrlParts | None:
    """The parts of a URL SQLAlchemy can read; ``None`` for anything else.

    SQLAlchemy reads ``user:p@ss@host`` as password ``p`` on host ``ss@host``: everything up to the
    last ``@`` before the query is taken as secret.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a port that is no number
        return None
    match = _USERINFO.fullmatch(url)
    if match is None:
        return None
    location, mark, query = match["rest"].partition("?")
    hidden = None
    if match["password"] is not None and "@" in location:
        hidden, location = location.rsplit("@", 1)
    return _UrlParts(match["scheme"], match["user"], match["password"], hidden, location,
                     query.split("&") if mark else [])


def mask_url(url: str) -> str:
    """The URL with every credential replaced by ``***``: the password (an unescaped ``@`` in it included)
    and each query parameter that carries one (``password=``, ``sslpassword=``, ``passfile=``...).
    Anything SQLAlchemy cannot read is masked whole."""
    parts = _split_url(url)
    if parts is None:
        return MASK
    userinfo = ""
    if parts.user is not None:
        userinfo = parts.user + ("" if parts.password is None else f":{MASK}") + "@"
    query = [f"{pair.partition('=')[0]}={MASK}" if _is_secret(pair) else pair for pair in parts.query]
    return f"{parts.scheme}://{userinfo}{parts.location}" + ("?" + "&".join(query) if query else "")


def url_secrets(url: str) -> list[str]:
    """Every credential in a URL, as written and decoded, longest first (to scrub from messages)."""
    parts = _split_url(url)
    if parts is None:
        return [url]
    values = parts.secret_values()
    return sorted({form for value in values for form in (value, unquote_plus(value)) if form}, key=len, reverse=True)


def mask_text(text: str, url: str) -> str:
    """``text`` (a driver's error, a log line) with every credential of ``url`` replaced by ``***``."""
    for secret in url_secrets(url):
        text = text.replace(secret, MASK)
    return text


def mask_argv(argv: list[str]) -> list[str]:
    """A command line safe to save or print: every URL argument (``URL`` or ``--opt=URL``) masked."""
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
        return mask_text(text, self.url) if self.url else text


def _backend(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).get_backend_name()


def _check_url(url: str) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a port that is no number
        raise ConfigError(f"--storage: {mask_url(url)!r} is not a database URL; expected e.g. "
                          "postgresql+psycopg://user@host:5432/db, sqlite:///file.db, or none for "
                          "the journal file in the sweep folder") from None
    if (parts := _split_url(url)) is not None and parts.hidden is not None:
        raise ConfigError(f"--storage: {mask_url(url)!r}: the password holds an '@'; write it as %40 in a URL")
    if parsed.drivername == "postgresql":
        # SQLAlchemy's default PostgreSQL driver is psycopg2; NeuroDrive ships psycopg 3.
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)

"""Worker processes: the one runner that starts them, watches them and shares the terminal's Ctrl-C.

``run_jobs`` runs each ``Job`` (a module-level function and its arguments) in a fresh spawned
interpreter (forking a process with torch and env threads is unsafe), at most ``workers`` at once,
and hands back each one's ``JobResult``: its exit status, and its return value or its error. A worker
logs and warns as its parent does (root logging level, warning filters).

One rule for exit statuses, set in the worker by ``worker_main`` and read by ``run_jobs``:

- ``0`` (``DONE``): the job returned; its value comes back.
- ``130`` (``INTERRUPTED``): Ctrl-C reached the job (``KeyboardInterrupt``), or a run saved its
  interrupt checkpoint and stopped (``RunInterrupted``): what it had is saved (a checkpoint, a
  re-queued trial). The whole run stops as after Ctrl-C: the other workers are stopped and save
  (``stop_workers``), jobs not yet started are dropped, and ``KeyboardInterrupt`` is raised, even
  where the parent itself got no signal (a background job starts with SIGINT ignored).
- ``2`` (``CONFIG_ERROR``): the job raised a ``ConfigError``; its one line is printed. The job failed.
- anything else: the job failed; ``1`` an exception (its traceback printed, its ``Type: message``
  handed back), a negative status a signal that killed it (``-9``: killed, e.g. for memory, or
  stopped past its ``timeout_s``). The other jobs go on.

Ctrl-C in the parent (``KeyboardInterrupt`` while it waits) also stops the workers (``stop_workers``)
and is raised again once they have saved.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import signal
import sys
import time
import traceback
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

from experiments.config.errors import ConfigError
from experiments.runs.errors import RunInterrupted

INTERRUPT_GRACE_S = 30  # how long interrupted workers get to save (and re-queue) before they are signalled
DONE, CONFIG_ERROR, INTERRUPTED = 0, 2, 130  # exit statuses (see the module's docstring)
LOG_FORMAT = "%(name)s: %(message)s"


@dataclass(frozen=True)
class Job:
    """A function run in a worker process: module-level (a spawned worker imports it by name), its
    arguments and return value picklable."""

    name: str
    target: Callable[..., Any]
    args: tuple[Any, ...] = ()


@dataclass(frozen=True)
class JobResult:
    """How a job ended: its exit status, and its return value (status 0) or its error."""

    job: Job
    exitcode: int
    value: Any = None
    error: str | None = None  # "Type: message" of what it raised
    timed_out: bool = False  # stopped past ``timeout_s``

    @property
    def ok(self) -> bool:
        return self.exitcode == DONE and not self.timed_out

    @property
    def interrupted(self) -> bool:
        return self.exitcode == INTERRUPTED

    def reason(self) -> str:
        """Why it did not finish, in a few words."""
        if self.timed_out:
            return "stopped past its time limit"
        if self.interrupted:
            return "interrupted"
        return self.error or f"exit status {self.exitcode}"


def worker_main(job: Job, results: Connection, log_level: int, warning_filters: list[Any]) -> None:
    """A worker process's entry point: run the job, send back its value or error, exit by the rule."""
    logging.basicConfig(level=log_level, format=LOG_FORMAT)
    warnings.filters[:] = warning_filters  # type: ignore[index]  # typeshed types the list as a Sequence
    try:
        value = job.target(*job.args)
    except (KeyboardInterrupt, RunInterrupted):
        raise SystemExit(INTERRUPTED) from None
    except ConfigError as error:
        print(f"error: {job.name}: {error}", file=sys.stderr)
        _send(results, ("error", f"ConfigError: {error}"))
        raise SystemExit(CONFIG_ERROR) from None
    except Exception as error:
        traceback.print_exc()
        _send(results, ("error", f"{type(error).__name__}: {error}"))
        raise SystemExit(1) from None
    _send(results, ("ok", value))


def _send(results: Connection, message: tuple[str, Any]) -> None:
    try:
        results.send(message)
    except Exception as error:  # an unpicklable value, say: still an answer, not a hang
        results.send(("error", f"{type(error).__name__} sending the result: {error}"))
    finally:
        results.close()


@dataclass
class _Running:
    job: Job
    process: BaseProcess
    reader: Connection
    deadline: float
    message: tuple[str, Any] | None = None
    closed: bool = False  # the worker closed its end: no message will come

    def read(self) -> None:
        if self.closed or self.message is not None:
            return
        try:
            if self.reader.poll():
                self.message = self.reader.recv()
        except (EOFError, OSError):
            self.closed = True

    def result(self, timed_out: bool = False) -> JobResult:
        self.reader.close()
        assert self.process.exitcode is not None, "joined first"
        kind, payload = self.message or ("", None)
        return JobResult(self.job, self.process.exitcode, value=payload if kind == "ok" else None,
                         error=payload if kind == "error" else None, timed_out=timed_out)


def run_jobs(jobs: Iterable[Job], workers: int = 1, on_exit: Callable[[JobResult], None] | None = None,
             timeout_s: float | None = None, grace_s: float = INTERRUPT_GRACE_S) -> list[JobResult]:
    """Run ``jobs`` in worker processes, ``workers`` at a time; returns their results as they end.

    :param on_exit: called with each result as its job ends (an interrupted one too, before the stop).
    :param timeout_s: a job still running this long after its start is killed (``timed_out``).
    :param grace_s: after Ctrl-C, how long workers get to save before they are sent SIGINT.
    """
    context = multiprocessing.get_context("spawn")
    pending = deque(jobs)
    running: list[_Running] = []
    results: list[JobResult] = []
    log_level = logging.getLogger().getEffectiveLevel()
    warning_filters = [entry for entry in warnings.filters if _picklable(entry)]

    def finish(entry: _Running, timed_out: bool = False) -> JobResult:
        entry.process.join()
        entry.read()  # it may have answered just before it exited
        running.remove(entry)
        result = entry.result(timed_out)
        results.append(result)
        if on_exit is not None:
            on_exit(result)
        return result

    try:
        while pending or running:
            while pending and len(running) < workers:
                job = pending.popleft()
                reader, writer = context.Pipe(duplex=False)
                process = context.Process(target=worker_main, name=job.name,
                                          args=(job, writer, log_level, warning_filters))
                process.start()
                writer.close()  # the worker holds the only writing end: its exit ends the pipe
                deadline = time.monotonic() + timeout_s if timeout_s is not None else float("inf")
                running.append(_Running(job, process, reader, deadline))
            soonest = min(entry.deadline for entry in running)
            waiting: list[Any] = [entry.process.sentinel for entry in running]

            waiting += [entry.reader for entry in running if entry.message is None and not entry.closed]
            wait(waiting, timeout=None if soonest == float("inf") else max(soonest - time.monotonic(), 0))
            for entry in list(running):
                entry.read()  # a big answer must be read for its worker to finish writing it
                if not entry.process.is_alive():
                    if finish(entry).interrupted:
                        raise KeyboardInterrupt(f"{entry.job.name} was interrupted")
                elif time.monotonic() >= entry.deadline:
                    entry.process.kill()
                    finish(entry, timed_out=True)
    except KeyboardInterrupt:
        stop_workers([entry.process for entry in running], grace_s)  # each saves (and re-queues) its work
        for entry in running:
            entry.reader.close()
        raise
    return results


def _picklable(value: Any) -> bool:
    try:
        pickle.dumps(value)
    except Exception:
        return False
    return True


def stop_workers(processes: Sequence[BaseProcess], grace_s: float = INTERRUPT_GRACE_S) -> None:
    """After a Ctrl-C: wait for the workers to save and exit.

    Ctrl-C in a terminal reaches every worker; workers that did not get it (the parent alone was
    signalled, or another worker stopped) get a SIGINT after ``grace_s``. A second Ctrl-C signals them
    again, so they stop at once without saving.
    """
    try:
        deadline = time.monotonic() + grace_s
        for process in processes:
            process.join(max(deadline - time.monotonic(), 0))
        _interrupt_alive(processes)
        for process in processes:
            process.join()
    except KeyboardInterrupt:
        _interrupt_alive(processes)
        for process in processes:
            process.join()


def _interrupt_alive(processes: Sequence[BaseProcess]) -> None:
    for process in processes:
        if process.is_alive() and process.pid is not None:
            os.kill(process.pid, signal.SIGINT)

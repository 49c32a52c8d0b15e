"""Group commit: the appends of concurrent callers (a server's payments) written in one transaction.

Every append takes the log's lock and waits for its commit to reach the disk; one payment at a time,
that wait is most of a payment's cost. With group commit on (`GroupCommit.attach`), a recorder's
`insert_events` hands its events to one writer thread, which takes every append waiting, writes
their events in one transaction (one lock, one flush) and gives each caller its own positions back.
Appends touching the same aggregate never share a transaction. If the shared transaction fails on
a conflict, each append is written on its own, so only the one that conflicted sees IntegrityError
(and the application looks again, as it would alone). The application does not know: it saves.
"""

from __future__ import annotations

import contextvars
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from eventsourcing.persistence import IntegrityError, StoredEvent

from adapters.persistence.metrics import GROUP_COMMIT

CALL_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "call_deadline", default=None
)
"""When the caller stops waiting (time.monotonic()), set by a server for each call: an append that
would commit after it is not made (DeadlinePassedError), so that a caller told it failed never
finds it done later."""


class DeadlinePassedError(OSError):
    """The caller's deadline passed before the append could be committed: nothing was written."""

    def __init__(self) -> None:
        super().__init__(
            "the database did not answer before the call's deadline; nothing was written: retry"
        )


def time_left(deadline: float | None) -> float | None:
    """Seconds until the deadline (None: none); DeadlinePassedError once it has passed."""
    if deadline is None:
        return None
    left = deadline - time.monotonic()
    if left <= 0:
        raise DeadlinePassedError
    return left


class Write(Protocol):
    def __call__(
        self, stored_events: Sequence[StoredEvent], *, deadline: float | None = None
    ) -> Sequence[int] | None: ...


IDLE_CHECK_SECONDS = 0.5
"""How often an idle writer looks whether its application has closed."""


class GroupedAppends:
    """A recorder's appends, handed to its group commit while one is attached (a library
    application's `save` passes `tracking=None`, which is no tracking)."""

    group_commit: GroupCommit | None = None

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if self.group_commit is not None and not any(kwargs.values()):
            return self.group_commit.insert(stored_events)
        return self.insert_now(stored_events, deadline=CALL_DEADLINE.get(), **kwargs)

    def insert_now(
        self, stored_events: Sequence[StoredEvent], *, deadline: float | None = None, **kwargs: Any
    ) -> Sequence[int] | None:
        """Append in a transaction of its own, committed before `deadline` or not at all."""
        raise NotImplementedError


@dataclass
class _Pending:
    ids: set[Any]
    events: Sequence[StoredEvent]
    deadline: float | None
    done: threading.Event = field(default_factory=threading.Event)
    positions: Sequence[int] = ()
    error: BaseException | None = None


class GroupCommit:
    def __init__(self, write: Write, *, until: threading.Event, max_batch: int = 64):
        self.write = write
        self.until = until
        self.max_batch = max_batch
        self._queue: queue.Queue[_Pending | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="group-commit", daemon=True)
        self._thread.start()

    @classmethod
    def attach(cls, recorder: GroupedAppends, *, until: threading.Event) -> GroupCommit:
        """Group the recorder's appends from now on, until `close` or the event `until` is set
        (the application's `closing`)."""
        group = cls(recorder.insert_now, until=until)
        recorder.group_commit = group
        return group

    def insert(self, events: Sequence[StoredEvent]) -> Sequence[int]:
        """Append these events with others waiting; their positions. IntegrityError on a conflict."""
        pending = _Pending({e.originator_id for e in events}, events, CALL_DEADLINE.get())
        self._queue.put(pending)
        pending.done.wait()
        if pending.error is not None:
            raise pending.error
        return pending.positions

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        held: list[_Pending] = []  # overlapping a batch: for the next one
        while True:
            if held:
                first: _Pending | None = held.pop(0)
            else:
                try:
                    first = self._queue.get(timeout=IDLE_CHECK_SECONDS)
                except queue.Empty:
                    if self.until.is_set():
                        return
                    continue
            if first is None:
                return
            batch, ids = [first], set(first.ids)
            while len(batch) < self.max_batch:
                try:
                    following = self._queue.get_nowait()
                except queue.Empty:
                    break
                if following is None:
                    self._queue.put(None)
                    break
                if following.ids & ids:
                    held.append(following)
                    continue
                batch.append(following)
                ids |= following.ids
            GROUP_COMMIT.observe(len(batch))
            self._write(batch)

    def _write(self, batch: list[_Pending]) -> None:
        now = time.monotonic()
        late = [p for p in batch if p.deadline is not None and p.deadline <= now]
        for p in late:  # their callers have stopped waiting: never written
            p.error = DeadlinePassedError()
            p.done.set()
        batch = [p for p in batch if p not in late]
        if not batch:
            return
        deadlines = [p.deadline for p in batch if p.deadline is not None]
        try:
            positions = list(
                self.write(
                    [e for p in batch for e in p.events],
                    deadline=min(deadlines) if deadlines else None,
                )
                or ()
            )
        except (IntegrityError, DeadlinePassedError) as error:
            if len(batch) == 1:
                batch[0].error = (
                    error
                    if isinstance(error, DeadlinePassedError)
                    else IntegrityError("a concurrent write got there first")
                )
            else:
                for p in batch:  # each on its own: only the one at fault sees it
                    self._write([p])
                return
        except BaseException as error:  # the callers see what went wrong (database down, ...)
            for p in batch:
                p.error = error
        else:
            start = 0
            for p in batch:  # the recorder returns the positions in the order of the events
                p.positions = positions[start : start + len(p.events)]
                start += len(p.events)
        for p in batch:
            p.done.set()

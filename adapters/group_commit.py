"""Group commit: the payments of concurrent callers saved in one transaction.

Every append takes the log's lock and waits for its commit to reach the disk; one payment at a time,
that wait is most of a payment's cost. A server hands each payment's aggregates to `GroupCommit.save`
instead: one thread takes every payment waiting, writes their events in one transaction (one lock,
one flush) and wakes the callers. Payments touching the same firm or ref never share a transaction.
If the shared transaction fails on a conflict, each payment is written on its own, so only the one
that conflicted sees IntegrityError (and looks again, as it would alone).
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from typing import Any

from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError, StoredEvent


@dataclass
class _Pending:
    ids: set[Any]
    events: list[StoredEvent]
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


class GroupCommit:
    def __init__(self, app: Application[Any], max_batch: int = 64):
        self.app = app
        self.max_batch = max_batch
        self._queue: queue.Queue[_Pending | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="group-commit", daemon=True)
        self._thread.start()

    def save(self, aggregates: list[Any]) -> None:
        """Save these aggregates' new events with others waiting; IntegrityError on a conflict."""
        events = [
            self.app.mapper.to_stored_event(e) for a in aggregates for e in a.collect_events()
        ]
        pending = _Pending({a.id for a in aggregates}, events)
        self._queue.put(pending)
        pending.done.wait()
        if pending.error is not None:
            raise pending.error

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        held: list[_Pending] = []  # overlapping a batch: for the next one
        while True:
            first = held.pop(0) if held else self._queue.get()
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
            self._write(batch)

    def _write(self, batch: list[_Pending]) -> None:
        try:
            self.app.recorder.insert_events([e for p in batch for e in p.events])
        except IntegrityError:
            if len(batch) == 1:
                batch[0].error = IntegrityError("a concurrent write got there first")
            else:
                for p in batch:
                    self._write([p])
                return
        except BaseException as error:  # the callers see what went wrong (database down, ...)
            for p in batch:
                p.error = error
        for p in batch:
            p.done.set()

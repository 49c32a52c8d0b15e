"""Faults injected at random moments, on both stores: an import killed (SIGKILL) anywhere leaves
nothing or the whole year, and the same command then completes it; a server killed anywhere under
payment traffic loses no payment it acknowledged and records none twice, however the callers retry.

Each test prints what it injected and what held. LEDGER_FAULT_RUNS sets how many faults each
injects (default 3 here; `make test-faults` runs 25), LEDGER_FAULT_SEED the moments (default: new
each run, printed, so that a failure can be replayed)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from support.grpc import serve_process
from support.ledgers import event_count, import_file, row, uscc, write_rows
from support.pg_server import ProvidedServer, create_database, drop_database

from adapters.bootstrap import open_ledger
from adapters.files.tokens import add_user
from adapters.grpc.generated.subsidy_ledger.v1 import ledger_pb2 as pb
from adapters.grpc.generated.subsidy_ledger.v1 import ledger_pb2_grpc as pb_grpc

pytestmark = [pytest.mark.slow, pytest.mark.faults]
RUNS = int(os.environ.get("LEDGER_FAULT_RUNS", "3"))
SEED = int(os.environ.get("LEDGER_FAULT_SEED") or random.SystemRandom().randrange(2**32))
CLI = [sys.executable, "-m", "adapters.main"]
BASELINE, ENTRANTS = 200, 3_000


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def new_ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], str]]:
    """Makes the URL of a new, empty ledger on the store, as often as asked."""
    made: list[str] = []
    server: ProvidedServer | None = None
    if request.param == "postgres":
        server = request.getfixturevalue("postgres_server")

    def new() -> str:
        if server is None:
            url = f"sqlite:///{tmp_path}/ledger-{len(made)}.db"
        else:
            url = create_database(server.admin_url)
        made.append(url)
        return url

    yield new
    if server is not None:
        for url in made:
            drop_database(server.admin_url, url)


def store(url: str) -> str:
    return url.split(":", 1)[0]


def _baseline(url: str, folder: Path) -> int:
    with open_ledger(url, create=True) as ledger:
        path = write_rows(folder / "2020.csv", [row(i) for i in range(BASELINE)])
        import_file(ledger, path, 2020, baseline=True)
    return event_count(url)


def _year_2021(folder: Path) -> Path:
    stay = [row(i) for i in range(BASELINE // 2)]  # the other half leaves
    return write_rows(folder / "2021.csv", stay + [row(10_000 + i) for i in range(ENTRANTS)])


def _state(url: str) -> tuple[int, list[int], int, bool]:
    """(events, imported years, firms on the 2021 register per the views, chain intact)."""
    with open_ledger(url) as ledger:
        years = [y.year for y in ledger.imported_years()]
        on_2021 = sum(s.size for s in ledger.register_sizes() if s.year == 2021)
        intact = ledger.recorder.verify_chain().intact  # type: ignore[attr-defined]
    return event_count(url), years, on_2021, intact


def test_an_import_killed_at_any_moment_leaves_nothing_or_the_whole_year(
    new_ledger: Callable[[], str], tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    year = _year_2021(tmp_path)
    command = ["import-register", "--year", "2021", str(year)]
    # One import to the end: what the whole year is, and how long it takes.
    whole_url = new_ledger()
    before = _baseline(whole_url, tmp_path)
    t0 = time.monotonic()
    done = subprocess.run([*CLI, *command, "--db", whole_url], capture_output=True, text=True)
    took = time.monotonic() - t0
    assert done.returncode == 0, done.stderr
    whole = event_count(whole_url) - before
    outcomes = {"nothing": 0, "whole year": 0, "finished before the kill": 0}
    for run in range(RUNS):
        url = new_ledger()
        before = _baseline(url, tmp_path)
        proc = subprocess.Popen([*CLI, *command, "--db", url], stderr=subprocess.DEVNULL)
        moment = rng.uniform(0, 0.9 * took)
        time.sleep(moment)
        proc.send_signal(signal.SIGKILL)
        code = proc.wait(timeout=60)
        time.sleep(0.3)  # PostgreSQL notices the lost connection and rolls back
        events, years, on_2021, intact = _state(url)
        where = f"seed {SEED}, run {run}, killed after {moment:.3f} s of {took:.3f} s"
        assert intact, where
        if events == before:
            assert years == [2020] and on_2021 == 0, where
            outcomes["nothing"] += 1
        else:
            assert events == before + whole, f"{where}: {events - before} of {whole} events"
            assert years == [2020, 2021] and on_2021 == BASELINE // 2 + ENTRANTS, where
            outcomes["whole year" if code == -signal.SIGKILL else "finished before the kill"] += 1
        # The same command completes what the kill interrupted (or says the year is there).
        again = subprocess.run([*CLI, *command, "--db", url], capture_output=True, text=True)
        assert again.returncode == 0, f"{where}: {again.stderr}"
        assert _state(url) == (before + whole, [2020, 2021], BASELINE // 2 + ENTRANTS, True)
    print(
        f"\nfaults ({store(whole_url)}): {RUNS} import(s) of {ENTRANTS + BASELINE // 2:,} rows "
        "killed at random "
        f"(seed {SEED}): {outcomes}; held {RUNS}, lost 0, doubled 0"
    )


class Payer:
    """Callers paying 1 fen at a time against the first-entry awards, each payment once: a call
    that failed is retried with the same ref and details until it is answered."""

    def __init__(self, token: str):
        self.metadata = [("authorization", f"Bearer {token}")]
        self.next = 0
        self.acknowledged: dict[str, str] = {}  # ref -> entitlement
        self.unanswered: dict[str, str] = {}
        self.replays = 0
        self.lock = threading.Lock()

    def request(self, ref: str, entitlement: str) -> pb.RecordPaymentRequest:
        return pb.RecordPaymentRequest(
            entitlement_id=entitlement, payment_ref=ref, amount_fen=1, paid_on="2022-03-01"
        )

    def pay(self, stub: pb_grpc.LedgerServiceStub, ref: str, entitlement: str) -> bool:
        try:
            answer = stub.RecordPayment(
                self.request(ref, entitlement), metadata=self.metadata, timeout=5
            )
        except grpc.RpcError as e:
            assert e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED), e
            with self.lock:
                self.unanswered[ref] = entitlement
            return False
        with self.lock:
            self.acknowledged[ref] = entitlement
            self.unanswered.pop(ref, None)
            self.replays += answer.replay
        return True

    def run(self, stub: pb_grpc.LedgerServiceStub, stop: threading.Event) -> None:
        while not stop.is_set():
            with self.lock:
                n, self.next = self.next, self.next + 1
            if not self.pay(stub, f"R{n}", f"{uscc(10_000 + n % 40)}/first_entry/2021"):
                return  # the server is gone: the test restarts it


def test_a_server_killed_at_any_moment_loses_no_acknowledged_payment_and_doubles_none(
    new_ledger: Callable[[], str], tmp_path: Path
) -> None:
    rng = random.Random(SEED + 1)
    url = new_ledger()
    with open_ledger(url, create=True) as ledger:
        import_file(ledger, write_rows(tmp_path / "2020.csv", [row(0)]), 2020, baseline=True)
        on_2021 = [row(0)] + [row(10_000 + i) for i in range(40)]
        import_file(ledger, write_rows(tmp_path / "2021.csv", on_2021), 2021)
    payer = Payer(add_user(tmp_path / "tokens", "财政", "finance", None))
    retried_after_kill = 0
    for kill in range(RUNS + 1):
        with (
            serve_process(tmp_path, db=url, stderr=subprocess.DEVNULL) as (proc, port),
            grpc.insecure_channel(f"127.0.0.1:{port}") as channel,
        ):
            grpc.channel_ready_future(channel).result(timeout=30)
            stub = pb_grpc.LedgerServiceStub(channel)
            # First what the last kill left unanswered: each is now recorded once.
            for ref, entitlement in sorted(payer.unanswered.items()):
                assert payer.pay(stub, ref, entitlement), f"seed {SEED}: {ref} unanswered"
                retried_after_kill += 1
            if kill == RUNS:
                break  # the last start only settles what was left
            stop = threading.Event()
            callers = [threading.Thread(target=payer.run, args=(stub, stop)) for _ in range(4)]
            for c in callers:
                c.start()
            time.sleep(rng.uniform(0.2, 1.5))
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            stop.set()
            for c in callers:
                c.join(timeout=30)
    assert not payer.unanswered
    with open_ledger(url) as ledger:
        recorded = [p.ref for p in ledger.payments()]
        paid = {a.entitlement_id: a.paid_fen for a in ledger.awards() if a.paid_fen}
    assert len(recorded) == len(set(recorded)), "a payment recorded twice"
    assert set(recorded) == set(payer.acknowledged), f"seed {SEED}"
    expected: dict[str, int] = {}
    for entitlement in payer.acknowledged.values():
        expected[entitlement] = expected.get(entitlement, 0) + 1
    assert paid == expected
    print(
        f"\nfaults ({store(url)}): serve killed {RUNS} time(s) at random (seed {SEED}) under 4 callers: "
        f"{len(payer.acknowledged):,} payments acknowledged, {retried_after_kill} in flight at a "
        f"kill and retried ({payer.replays} of them already committed: replays); lost 0, doubled 0"
    )

"""The log and its views: interrupted imports, concurrent payments, exactly-once and rebuilds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from datetime import date
from pathlib import Path
from typing import cast

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.ledgers import (
    CLI,
    History,
    event_count,
    import_file,
    import_history,
    row,
    uscc,
    view_tables,
    write_rows,
)
from support.pg_server import create_database, drop_database

from adapters.bootstrap import open_ledger
from adapters.files.register_csv import CsvRegister, RegisterFileError
from adapters.persistence.settings import database_settings
from domain.application import Ledger
from domain.command_results import ImportResult
from domain.errors import NotFoundError, RefusedError
from domain.rules import entitlements
from projections import runner
from projections.tables import TABLES

# Interrupted imports ----------------------------------------------------------------------------


class FailingRegister(CsvRegister):
    """A register whose second pass dies half-way, as a crash during the write would."""

    def records(self, *, checked: bool = False):  # type: ignore[no-untyped-def]
        for n, item in enumerate(super().records(checked=checked)):
            if checked and n == 1500:
                raise RegisterFileError("simulated crash half-way through the write")
            yield item


def test_an_import_that_fails_half_way_writes_nothing_and_a_rerun_completes(
    db_url: str, tmp_path: Path
) -> None:
    base = write_rows(tmp_path / "2020.csv", [row(i) for i in range(3000)])
    with open_ledger(db_url, create=True) as ledger:
        with pytest.raises(RegisterFileError):
            ledger.import_register(2020, FailingRegister(base, 2020), baseline=True, actor="t")
        assert event_count(db_url) == 0
        assert ledger.imported_years() == []
        assert ledger.register_sizes() == []
        result = import_file(ledger, base, 2020, baseline=True)
        assert isinstance(result, ImportResult)
        assert result.counts["on_baseline"] == 3000 and not result.replay
        # 3000 registrations, 3000 baseline facts, the book opened, the policy, the year.
        assert event_count(db_url) == 6003
        assert sum(r.size for r in ledger.register_sizes()) == 3000


def _wait_for_write(url: str, proc: subprocess.Popen[bytes], wal: Path | None) -> None:
    """Block until the import process is inside its write transaction."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the import finished before it could be interrupted"
        if wal is not None:
            if wal.exists() and wal.stat().st_size > 1_000_000:
                return
        else:
            with psycopg.connect(url, autocommit=True) as conn:
                held = conn.execute(
                    "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                    "WHERE c.relname = 'ledger_events' AND l.mode = 'ExclusiveLock' AND l.granted"
                ).fetchone()
                if held and held[0]:
                    return
        time.sleep(0.005)
    raise AssertionError("the import never started writing")


@pytest.mark.slow
def test_an_import_killed_while_writing_leaves_the_year_invisible_and_a_rerun_completes(
    db_url: str, tmp_path: Path
) -> None:
    rows = [row(i) for i in range(40_000)]
    base = write_rows(tmp_path / "2020.csv", rows)
    settings = database_settings(db_url)
    wal = Path(settings.env["SQLITE_DBNAME"] + "-wal") if settings.kind == "sqlite" else None
    env = {**os.environ, "LEDGER_DATABASE_URL": db_url}
    proc = subprocess.Popen(
        [*CLI, "import-register", "--year", "2020", "--baseline", str(base)], env=env
    )
    try:
        _wait_for_write(db_url, proc, wal)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    if settings.kind == "postgres":
        time.sleep(0.5)  # the server notices the lost connection and rolls back
    assert event_count(db_url) == 0
    with open_ledger(db_url, create=True) as ledger:
        assert ledger.imported_years() == []
        assert ledger.register_sizes() == []
    done = subprocess.run(
        [*CLI, "import-register", "--year", "2020", "--baseline", "--json", str(base)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert '"on_baseline": 40000' in done.stdout
    assert event_count(db_url) == 2 * 40_000 + 3
    with open_ledger(db_url, create=True) as ledger:
        assert sum(r.size for r in ledger.register_sizes()) == 40_000


# Payments under concurrency ---------------------------------------------------------------------


@pytest.fixture
def ledger_with_award(db_url: str, tmp_path: Path) -> tuple[str, str]:
    """A ledger where firm 1 first entered in 2021: 300,000 yuan (四) decided 2021."""
    write_rows(tmp_path / "2020.csv", [row(0)])
    write_rows(tmp_path / "2021.csv", [row(0), row(1)])
    with open_ledger(db_url, create=True) as ledger:
        import_file(ledger, tmp_path / "2020.csv", 2020, baseline=True)
        import_file(ledger, tmp_path / "2021.csv", 2021)
    return db_url, f"{uscc(1)}/first_entry/2021"


def test_a_payment_retried_from_twenty_threads_at_once_is_recorded_exactly_once(
    ledger_with_award: tuple[str, str],
) -> None:
    url, award = ledger_with_award
    results: list[bool] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(20, timeout=30)
    services = [open_ledger(url, create=True) for _ in range(20)]

    def pay(ledger: Ledger) -> None:
        try:
            barrier.wait()
            paid = ledger.record_payment(
                award, "GK2022000001", 30_000_000, date(2022, 5, 1), actor="finance"
            )
            results.append(paid.replay)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=pay, args=(s,)) for s in services]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in services:
        s.close()
    assert errors == []
    assert sorted(results) == [False] + [True] * 19
    with open_ledger(url, create=True) as ledger:
        (a,) = ledger.awards()
        assert (a.paid_fen, a.status) == (30_000_000, "paid")
        assert len(ledger.enterprise(uscc(1)).payments) == 1


def test_concurrent_instalments_never_add_up_to_more_than_the_award(
    ledger_with_award: tuple[str, str],
) -> None:
    url, award = ledger_with_award
    outcomes: list[str] = []
    barrier = threading.Barrier(5, timeout=30)
    services = [open_ledger(url, create=True) for _ in range(5)]

    def pay(n: int) -> None:
        barrier.wait()
        try:
            services[n].record_payment(
                award, f"GK{n}", 10_000_000, date(2022, 5, 1), actor="finance"
            )
            outcomes.append("paid")
        except RefusedError as e:
            outcomes.append(str(e).split(":")[0])

    threads = [threading.Thread(target=pay, args=(n,)) for n in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in services:
        s.close()
    # 300,000 yuan in 100,000-yuan instalments: three fit, two are overpayments.
    assert sorted(outcomes) == ["overpayment"] * 2 + ["paid"] * 3
    with open_ledger(url, create=True) as ledger:
        assert ledger.awards()[0].paid_fen == 30_000_000


# Views: exactly once, caught up, rebuildable -----------------------------------------------------


@pytest.mark.parametrize("batch", [10_000, 50])
def test_services_catching_up_at_once_apply_each_event_once(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch: int
) -> None:
    # Small batches make the catch-ups interleave: a batch folded on stale views is refused.
    monkeypatch.setattr(runner, "BATCH", batch)
    write_rows(tmp_path / "2020.csv", [row(i) for i in range(2000)])
    with open_ledger(db_url, create=True) as writer:
        writer.import_register(
            2020, CsvRegister(tmp_path / "2020.csv", 2020), baseline=True, actor="t"
        )
        # The import caught the views up itself: start them again from nothing.
        views = writer.views
        assert isinstance(views, runner.LedgerViews)
        with views._write() as tx:
            for table in TABLES:
                tx.execute(f"DELETE FROM {table.name}")
            tx.execute(
                f"DELETE FROM {views._tracking_table} WHERE application_name = %s",
                (runner.TRACKING_NAME,),
            )
    services = [open_ledger(db_url, create=True) for _ in range(3)]
    try:
        threads = [threading.Thread(target=s.catch_up) for s in services]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert {cast(runner.LedgerViews, s.views).position() for s in services} == {
            services[0].recorder.max_notification_id()
        }
        assert sum(r.size for r in services[0].register_sizes()) == 2000
        assert len(view_tables(services[0])["lv_register"]) == 2000
    finally:
        for s in services:
            s.close()


histories = st.lists(
    st.tuples(
        st.lists(st.booleans(), min_size=4, max_size=4),  # on the register 2020..2023?
        st.sampled_from(
            ["", "2017", "2018", "2019", "2020"]
        ),  # first_entry_year given on the baseline
        st.sampled_from(["140105", "140212", "141102"]),  # region in 2022 and after (a move)
        st.sampled_from(["small", "medium", "micro", ""]),
    ),
    min_size=1,
    max_size=12,
)


def _check_rebuild(url: str, folder: Path, history: History) -> None:
    with open_ledger(url, create=True) as ledger:
        import_history(ledger, folder, history)
        incremental = view_tables(ledger)
        policy = ledger.get_policies()
        truth = sorted(
            e.entitlement_id
            for i in [*range(len(history)), 999]
            for e in _firm_entitlements(ledger, uscc(i), policy)
        )
        assert sorted(r[0] for r in incremental["lv_awards"] if r[-1] == "None") == truth
        ledger.rebuild_views()
        assert view_tables(ledger) == incremental


def _firm_entitlements(ledger: Ledger, code: str, policy: object) -> list[object]:
    try:
        firm = ledger.get_enterprise(code)
    except NotFoundError:  # a firm never on any register
        return []
    return entitlements(firm.state.history(), policy)  # type: ignore[arg-type]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@pytest.mark.slow
@given(history=histories)
def test_rebuilt_views_equal_incremental_views_on_sqlite(
    tmp_path_factory: pytest.TempPathFactory, history: History
) -> None:
    folder = tmp_path_factory.mktemp("prop")
    _check_rebuild(f"sqlite:///{folder}/ledger.db", folder, history)


@pytest.mark.postgres
@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@pytest.mark.slow
@given(history=histories)
def test_rebuilt_views_equal_incremental_views_on_postgres(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_server: object,
    history: History,
) -> None:
    folder = tmp_path_factory.mktemp("prop")
    admin = postgres_server.admin_url  # type: ignore[attr-defined]
    url = create_database(admin)
    try:
        _check_rebuild(url, folder, history)
    finally:
        drop_database(admin, url)


@pytest.mark.slow
@pytest.mark.postgres
def test_imports_started_together_on_a_new_postgres_database_make_one_ledger(
    pg_database_url: str, tmp_path: Path
) -> None:
    # Processes making a new database's tables at once collide in PostgreSQL's catalogue; each
    # must still answer truthfully: one imports, the others find it imported (a replay) or, if
    # they lost the race to the log, say so (exit 3) having written nothing.
    base = write_rows(tmp_path / "2020.csv", [row(i) for i in range(50)])
    env = {**os.environ, "LEDGER_DATABASE_URL": pg_database_url}
    command = [*CLI, "import-register", "--year", "2020", "--baseline", "--json", str(base)]
    procs = [
        subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(6)
    ]
    results = [(p.wait(timeout=60), *p.communicate()) for p in procs]
    for code, _out, err in results:
        assert code == 0 or (code == 3 and "nothing was imported: run the same command" in err), err
    imported = [json.loads(out) for code, out, _err in results if code == 0]
    assert sum(1 for doc in imported if not doc["replay"]) == 1
    assert event_count(pg_database_url) == 2 * 50 + 3
    readers = [
        subprocess.Popen([*CLI, "awards", "--json"], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(6)
    ]
    assert all(p.wait(timeout=60) == 0 for p in readers)
    assert all(json.loads(p.communicate()[0])["awards"] == [] for p in readers)

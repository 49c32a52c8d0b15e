"""Every input is checked at the boundary: no control character (NUL above all) in any text field
of a file, an option or a message; a clear error naming the field; nothing written."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.helpers import Firm, ref_uscc, write_register

from adapters.files.register_csv import CsvRegister, RowsRegister
from adapters.files.tokens import TokenFileError, add_user, load_users
from adapters.files.treasury_csv import read_treasury
from domain.application import Ledger
from domain.errors import ImportRejectedError, InvalidInputError, TreasuryRejectedError
from domain.register import COLUMNS, parse_row
from domain.text import control_problem
from projections.memory import MemoryRegister

A, B = ref_uscc(1), ref_uscc(2)
CONTROL = st.sampled_from(["\x00", "\x01", "\x1b", "\x7f", "\x85", "\t", "\n", "\r", "\udcd6"])


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("GK\x00X", "U+0000 NUL) at character 3"),
        ("a\nb", "must be on one line (a line break at character 2)"),
        ("\x1b[31mred", "U+001B ESC) at character 1"),
        ("\udcd6", "undecodable byte (U+DCD6)"),
        ("x\x9by", "U+009B) at character 2"),
    ],
)
def test_each_control_character_is_named_and_placed(text: str, named: str) -> None:
    problem = control_problem(text)
    assert problem is not None and named in problem


def test_text_of_any_script_is_accepted() -> None:
    assert control_problem("山西省太原市 Müller-Ölwerk №1 ‘quoted’ 😀") is None


@given(
    column=st.sampled_from(COLUMNS),
    prefix=st.text(alphabet="山西ab ", max_size=3),
    bad=CONTROL,
)
def test_a_register_field_with_a_control_character_is_refused_naming_that_field(
    column: str, prefix: str, bad: str
) -> None:
    values = list(Firm(A, size_class="small").line().split(","))
    i = COLUMNS.index(column)
    values[i] = prefix + bad + values[i]
    errors = parse_row(values, 2021)
    assert isinstance(errors, list)
    assert column in {e.field for e in errors}
    (named,) = [e for e in errors if e.field == column]
    assert "one line" in named.reason or "remove it" in named.reason


def test_a_register_file_with_a_nul_writes_nothing_and_says_where(tmp_path: Path) -> None:
    path = write_register(tmp_path / "2020.csv", [Firm(A), Firm(B, name="坏\x00名")])
    ledger = Ledger(
        env={"PERSISTENCE_MODULE": "eventsourcing.popo"},
        today=lambda: date(2026, 1, 1),
        known=lambda _app: MemoryRegister(),
    )
    with pytest.raises(ImportRejectedError) as rejected:
        ledger.import_register(2020, CsvRegister(path, 2020), actor="t", baseline=True)
    assert rejected.value.lines() == [
        f"{path}:3: name: contains a control character (U+0000 NUL) at character 2: remove it"
    ]
    assert ledger.recorder.max_notification_id() is None


TREASURY = "voucher_no,payee_uscc,payee_name,amount_yuan,paid_on,purpose\n"


def test_a_treasury_purpose_may_span_lines_but_no_field_holds_a_nul(tmp_path: Path) -> None:
    ok = tmp_path / "ok.csv"
    ok.write_text(TREASURY + f'GK1,{A},甲,1.00,2024-01-02,"第一行\n第二行\t附注"\n', "utf-8")
    (row,) = read_treasury(ok, through=date(2024, 1, 2)).rows
    assert row.purpose == "第一行\n第二行\t附注"
    bad = tmp_path / "bad.csv"
    bad.write_text(TREASURY + f"GK\x001,{A},甲,1.00,2024-01-02,x\x00y\n", "utf-8")
    with pytest.raises(TreasuryRejectedError) as rejected:
        read_treasury(bad, through=date(2024, 1, 2))
    assert sorted(e.field for e in rejected.value.errors) == ["purpose", "voucher_no"]


@pytest.fixture
def ledger() -> Ledger:
    app = Ledger(
        env={"PERSISTENCE_MODULE": "eventsourcing.popo"},
        today=lambda: date(2026, 6, 1),
        known=lambda _app: MemoryRegister(),
    )
    for year, rows in {2020: [A], 2021: [A, B]}.items():
        register = RowsRegister([Firm(u).line().split(",") for u in rows], year)
        app.import_register(year, register, actor="t", baseline=year == 2020)
    return app


@pytest.mark.parametrize(
    ("field", "call"),
    [
        ("ref", lambda L: L.record_payment(f"{B}/first_entry/2021", "GK\x00X", 1, date(2022, 3, 1), actor="f")),
        ("actor", lambda L: L.record_payment(f"{B}/first_entry/2021", "GK1", 1, date(2022, 3, 1), actor="f\x00")),
        ("entitlement_id", lambda L: L.record_payment("abc/first_entry/2021", "GK2", 1, date(2022, 3, 1), actor="f")),
        ("entitlement_id", lambda L: L.record_payment(f"{B}/first\x00entry/2021", "GK3", 1, date(2022, 3, 1), actor="f")),
        ("uscc", lambda L: L.get_enterprise("abc")),
        ("uscc", lambda L: L.get_enterprise("")),
        ("reason", lambda L: L.import_register(2021, RowsRegister([], 2021), actor="t", correction=True, reason="复核\x00")),
        ("actor", lambda L: L.import_register(2022, RowsRegister([], 2022), actor="")),
    ],
)  # fmt: skip
def test_the_application_refuses_bad_text_naming_the_argument(
    ledger: Ledger, field: str, call: object
) -> None:
    head = ledger.recorder.max_notification_id()
    with pytest.raises(InvalidInputError) as refused:
        call(ledger)  # type: ignore[operator]
    assert refused.value.field == field
    assert ledger.recorder.max_notification_id() == head


def test_a_committed_import_whose_views_cannot_catch_up_says_so_and_is_kept() -> None:
    class FailingAfterwards(MemoryRegister):
        calls = 0

        def catch_up(self, app: object) -> int:
            self.calls += 1
            if self.calls > 1:  # the catch-up after the commit
                raise OSError("the database went away")
            return super().catch_up(app)  # type: ignore[arg-type]

    ledger = Ledger(
        env={"PERSISTENCE_MODULE": "eventsourcing.popo"},
        today=lambda: date(2026, 1, 1),
        known=lambda _app: FailingAfterwards(),
    )
    r = ledger.import_register(
        2020, RowsRegister([Firm(A).line().split(",")], 2020), actor="t", baseline=True
    )
    assert r.views_error == "OSError: the database went away" and not r.replay
    assert r.position == ledger.recorder.max_notification_id() == 5


def test_a_tokens_file_others_may_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    add_user(path, "财政", "finance", None)
    assert path.stat().st_mode & 0o777 == 0o600
    path.chmod(0o644)
    with pytest.raises(TokenFileError, match=r"too open.*chmod 600"):
        load_users(path)
    with pytest.raises(TokenFileError, match="too open"):
        add_user(path, "审计", "auditor", None)
    path.chmod(0o600)
    assert [u.user for u in load_users(path).values()] == ["财政"]
    with pytest.raises(TokenFileError, match="--user: contains a control character"):
        add_user(path, "坏\x00人", "finance", None)


@pytest.mark.parametrize(
    ("listen", "tls", "refused"),
    [
        ("127.0.0.1:50051", False, None),
        ("127.9.9.9:0", False, None),
        ("localhost:50051", False, None),
        ("[::1]:50051", False, None),
        ("0.0.0.0:50051", False, "binds only a loopback address"),
        ("[::]:50051", False, "binds only a loopback address"),
        ("10.1.2.3:50051", False, "binds only a loopback address"),
        # A name is not looked up to decide whether it is loopback: DNS may say anything.
        ("127.0.0.1.nip.io:50051", False, "is a name, not an address"),
        ("ledger.example:443", True, None),
        ("0.0.0.0:50051", True, None),
        ("127.0.0.1", False, "expected HOST:PORT"),
        (":50051", False, "expected HOST:PORT"),
        ("127.0.0.1:http", False, "expected HOST:PORT"),
        ("127.0.0.1:٥٠٠٥١", False, "expected HOST:PORT"),
        ("127.0.0.1:70000", False, "the port must be 0 to 65535"),
        ("::1:50051", False, "written in brackets"),
        ("127.0.0.1\x00:50051", False, "NUL"),
    ],
)
def test_the_listen_address_is_checked_by_what_it_is_not_how_it_reads(
    listen: str, tls: bool, refused: str | None
) -> None:
    from adapters.grpc.settings import ServeError, parse_listen

    if refused is None:
        host, port = parse_listen(listen, tls=tls)
        assert f"{host}:{port}" == listen
    else:
        with pytest.raises(ServeError, match=refused):
            parse_listen(listen, tls=tls)


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        ("LEDGER_POOL_SIZE", "abc", "LEDGER_POOL_SIZE='abc': Input should be a valid integer"),
        (
            "LEDGER_POOL_SIZE",
            "0",
            "LEDGER_POOL_SIZE='0': Input should be greater than or equal to 1",
        ),
        ("LEDGER_WORKERS", "-2", "LEDGER_WORKERS='-2'"),
        ("LEDGER_GRACE_SECONDS", "soon", "LEDGER_GRACE_SECONDS='soon'"),
        ("LEDGER_CALL_SECONDS", "0", "LEDGER_CALL_SECONDS='0': Input should be greater than 0"),
        ("LEDGER_LISTEN", "0.0.0.0:1", "binds only a loopback address"),
        ("LEDGER_TLS_CERT", "/nonexistent.pem", "TLS needs both"),
    ],
)
def test_each_server_setting_that_cannot_be_used_is_named(
    variable: str, value: str, said: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from adapters.grpc.settings import ServeError, ServeSettings

    monkeypatch.setenv(variable, value)
    with pytest.raises(ServeError) as refused:
        ServeSettings.from_environment()
    assert said in str(refused.value)


def test_the_server_settings_default_to_what_the_readme_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from adapters.grpc.settings import ENVIRONMENT, ServeSettings

    for name in ENVIRONMENT.values():
        monkeypatch.delenv(name, raising=False)
    settings = ServeSettings.from_environment()
    assert (settings.listen, settings.pool_size, settings.workers) == ("127.0.0.1:50051", 8, 1)
    assert (settings.grace_seconds, settings.call_seconds, settings.tls) == (20.0, 30.0, False)
    assert ServeSettings.from_environment("[::1]:0").address() == ("[::1]", 0)

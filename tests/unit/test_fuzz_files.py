"""Register, treasury, below-scale and (九) hires and contributions files damaged at random
(truncated, bytes replaced or inserted, control characters, another encoding than the one named):
each is either read whole or refused with every bad line placed (FILE:LINE: FIELD: reason), and a refused register writes nothing. Never a crash."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.helpers import Firm, ref_uscc
from support.persons import CONTRIBUTIONS_HEADER, HIRES_HEADER, ref_person_id

from adapters.files.below_scale_csv import read_below_scale
from adapters.files.csv_records import CsvFileError
from adapters.files.hires_csv import read_contributions, read_hires
from adapters.files.register_csv import CsvRegister
from adapters.files.treasury_csv import read_treasury
from domain.application import Ledger
from domain.codes import divisions
from domain.errors import BelowScaleRejectedError, RejectedFileError
from projections.memory import MemoryRegister

REGISTER = "\n".join(
    [
        "uscc,name,region_code,industry_code,size_class,route,first_entry_year",
        *(Firm(ref_uscc(i), name=f"山西测试{i}有限公司").line() for i in range(1, 6)),
    ]
)
TREASURY = "\n".join(
    [
        "voucher_no,payee_uscc,payee_name,amount_yuan,paid_on,purpose",
        *(
            f"GK{i},{ref_uscc(i)},山西测试{i}有限公司,{i}00000.00,2024-0{i}-1{i},"
            f'"小升规奖励 {ref_uscc(i)}/first_entry/2023, 第{i}笔"'
            for i in range(1, 6)
        ),
    ]
)
ENCODINGS = ["utf-8", "utf-8-sig", "gb18030"]
NAMED = ["utf-8", "gb18030", "gbk"]
PLACED = re.compile(r"^.+:\d+: [a-z_]+: .+")


@st.composite
def damaged(draw: st.DrawFn, text: str) -> tuple[bytes, str]:
    """The file's bytes in some encoding, damaged in one of the ways files are, and the encoding
    the reader is told."""
    raw = text.encode(draw(st.sampled_from(ENCODINGS)))
    at = draw(st.integers(0, len(raw)))
    match draw(st.sampled_from(["truncate", "replace", "insert", "control", "none"])):
        case "truncate":
            raw = raw[:at]
        case "replace":
            raw = raw[:at] + draw(st.binary(min_size=1, max_size=4)) + raw[at + 4 :]
        case "insert":
            raw = raw[:at] + draw(st.binary(min_size=1, max_size=8)) + raw[at:]
        case "control":
            bad = draw(st.sampled_from(["\x00", "\x1b", "\x7f", "\x85", "\u2028", "\ufeff", "\r"]))
            raw = raw[:at] + bad.encode() + raw[at:]
    return raw, draw(st.sampled_from(NAMED))


def assert_placed(lines: list[str], path: Path) -> None:
    assert lines, "a refusal names at least one line"
    for line in lines:
        if line.startswith(f"{path}: ... and "):
            continue  # the count of repeats after the first 20
        assert line.startswith(f"{path}:") and PLACED.match(line), line


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=damaged(REGISTER))
def test_a_damaged_register_is_imported_whole_or_refused_line_by_line(
    tmp_path: Path, case: tuple[bytes, str]
) -> None:
    raw, encoding = case
    path = tmp_path / "2020.csv"
    path.write_bytes(raw)
    ledger = Ledger(
        env={"PERSISTENCE_MODULE": "eventsourcing.popo"},
        today=lambda: date(2026, 1, 1),
        known=lambda _app: MemoryRegister(),
    )
    try:
        source = CsvRegister(path, 2020, encoding=encoding)
        result = ledger.import_register(2020, source, actor="t", baseline=True)
    except RejectedFileError as refused:
        assert_placed(refused.lines(), path)
        assert ledger.recorder.max_notification_id() is None  # nothing written
    except CsvFileError as refused:  # the file as a whole: its header, or unreadable
        assert str(path) in str(refused)
        assert ledger.recorder.max_notification_id() is None
    else:
        # Read whole: every firm the file holds, each with its two events, and the year's own.
        assert result.counts["on_baseline"] == result.rows >= 1
        assert ledger.recorder.max_notification_id() == 2 * result.rows + 3


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=damaged(TREASURY))
def test_a_damaged_treasury_file_is_read_whole_or_refused_line_by_line(
    tmp_path: Path, case: tuple[bytes, str]
) -> None:
    raw, encoding = case
    path = tmp_path / "treasury.csv"
    path.write_bytes(raw)
    try:
        read = read_treasury(path, through=date(2024, 12, 31), encoding=encoding)
    except RejectedFileError as refused:
        assert_placed(refused.lines(), path)
    except CsvFileError as refused:
        assert str(path) in str(refused)
    else:
        assert all(r.amount_fen > 0 and r.voucher_no for r in read.rows)
        assert len({r.voucher_no for r in read.rows}) <= len(read.rows) <= 5 + 1


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_the_undamaged_files_read_in_each_encoding(tmp_path: Path, encoding: str) -> None:
    """The fuzzing's starting points are valid, so what it finds is the damage's doing."""
    path = tmp_path / "t.csv"
    path.write_bytes(TREASURY.encode(encoding))
    named = "gb18030" if encoding == "gb18030" else "utf-8"
    assert len(read_treasury(path, through=date(2024, 12, 31), encoding=named).rows) == 5
    path.write_bytes(REGISTER.encode(encoding))
    assert sum(1 for _ in CsvRegister(path, 2020, encoding=named).records()) == 5


PEOPLE = [ref_person_id("140105", f"19{70 + i}0{i}1{i}", f"{i}{i}{i}") for i in range(1, 6)]
HIRES = "\n".join(
    [
        HIRES_HEADER,
        *(
            f"{ref_uscc(i)},{p},测试{i},长期失业人员,2023-0{i}-01,{'2025-12-31' if i % 2 else ''}"
            for i, p in enumerate(PEOPLE, start=1)
        ),
    ]
)
CONTRIBUTIONS = "\n".join(
    [CONTRIBUTIONS_HEADER, *(f"{ref_uscc(i)},{p},{i}2345" for i, p in enumerate(PEOPLE, start=1))]
)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    case=st.one_of(
        damaged(HIRES).map(lambda c: (*c, True)), damaged(CONTRIBUTIONS).map(lambda c: (*c, False))
    )
)
def test_a_damaged_hires_or_contributions_file_is_read_whole_or_refused_line_by_line(
    tmp_path: Path, case: tuple[bytes, str, bool]
) -> None:
    raw, encoding, hires = case
    path = tmp_path / "hires.csv"
    path.write_bytes(raw)
    try:
        read = (read_hires if hires else read_contributions)(path, encoding=encoding)
    except CsvFileError as refused:
        assert str(path) in str(refused)
        return
    lines = [e.format(str(path)) for e in read.errors]
    if lines:
        assert_placed(lines, path)
    for person in PEOPLE:  # an identity number is never quoted whole
        assert all(person not in line for line in lines)
    assert len(read.rows) <= 5


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_the_undamaged_hires_files_read_in_each_encoding(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "h.csv"
    named = "gb18030" if encoding == "gb18030" else "utf-8"
    path.write_bytes(HIRES.encode(encoding))
    hires = read_hires(path, encoding=named)
    assert (len(hires.rows), hires.errors) == (5, [])
    path.write_bytes(CONTRIBUTIONS.encode(encoding))
    contributions = read_contributions(path, encoding=named)
    assert (len(contributions.rows), contributions.errors) == (5, [])


BELOW_SCALE = "\n".join(
    [
        "uscc,name,region_code,industry_code,revenue_ytd_fen,employees,source",
        *(
            f"{ref_uscc(i)},山西规下{i}有限公司,140105,C1311,{i}00000000,{i}0,tax"
            for i in range(1, 6)
        ),
    ]
)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=damaged(BELOW_SCALE))
def test_a_damaged_below_scale_file_is_read_whole_or_refused_line_by_line(
    tmp_path: Path, case: tuple[bytes, str]
) -> None:
    raw, encoding = case
    path = tmp_path / "2026-03.csv"
    path.write_bytes(raw)
    try:
        read = read_below_scale(path, encoding=encoding)
    except CsvFileError as refused:
        assert str(path) in str(refused)
        return
    if read.errors:
        assert_placed(BelowScaleRejectedError(read.name, read.errors).lines(), path)
    else:
        assert 0 <= len(read.rows) <= 5 + 1
        for line, row in read.rows:
            assert line >= 2 and row.revenue_ytd_fen >= 0
            assert row.city_code == divisions()[row.region_code].city_code
            assert not any(c < " " for c in row.name)


def test_a_header_run_into_the_first_row_is_refused_without_its_identity_number(
    tmp_path: Path,
) -> None:
    """A control character in place of the header's line end: the header error quotes the line
    it got, the first row's identity number masked."""
    path = tmp_path / "contributions.csv"
    path.write_bytes(CONTRIBUTIONS.replace("employer_paid_fen\n", "employer_paid_\x00", 1).encode())
    read = read_contributions(path)
    lines = [e.format(str(path)) for e in read.errors]
    assert any(":1: header:" in line for line in lines), lines
    assert all(PEOPLE[0] not in line for line in lines) and PEOPLE[0][-4:] in lines[0]

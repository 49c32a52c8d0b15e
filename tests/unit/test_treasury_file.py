"""The treasury's payment file: header, encodings, physical lines, each field's rule, all-or-nothing."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import pytest
from support.helpers import ref_uscc

from adapters.files.csv_records import CsvFileError
from adapters.files.treasury_csv import TREASURY_COLUMNS, TreasuryFile, TreasuryRow, read_treasury
from domain.errors import RefusedError, RowError, TreasuryRejectedError

HEADER = "voucher_no,payee_uscc,payee_name,amount_yuan,paid_on,purpose"
THROUGH = date(2023, 6, 30)
A, B, C = (ref_uscc(n) for n in (21, 22, 23))
BAD_CHECK = A[:17] + ("0" if A[17] != "0" else "1")  # the same code, mistyped at the end


def write(
    path: Path,
    lines: list[str],
    *,
    encoding: str = "utf-8",
    bom: bool = False,
    header: str = HEADER,
    newline: str = "\n",
) -> Path:
    data = newline.join([header, *lines]).encode(encoding) + newline.encode()
    path.write_bytes(b"\xef\xbb\xbf" + data if bom else data)
    return path


def payment(
    voucher: str = "GK2023-0001",
    uscc: str = A,
    name: str = "太原测试制造有限公司",
    amount: str = "300000.00",
    paid_on: str = "2023-03-15",
    purpose: str = "",
) -> str:
    return ",".join((voucher, uscc, name, amount, paid_on, purpose))


def rejected(path: Path, encoding: str = "utf-8") -> list[RowError]:
    with pytest.raises(TreasuryRejectedError) as caught:
        read_treasury(path, through=THROUGH, encoding=encoding)
    return caught.value.errors


def where(errors: list[RowError]) -> list[tuple[int, str]]:
    return [(e.line, e.field) for e in errors]


# Good files --------------------------------------------------------------------------------------


def test_the_columns_are_those_of_the_format() -> None:
    assert ",".join(TREASURY_COLUMNS) == HEADER


def test_a_good_file_is_read_exactly(tmp_path: Path) -> None:
    path = write(
        tmp_path / "t.csv",
        [
            payment("GK2023-0001", A, "太原测试制造有限公司", "300000.00", "2023-03-15", "奖励"),
            payment("GK2023-0002", B, "Datong Test Co", "0.01", "2023-06-30"),
            payment("GK2023-0003", C, "长治测试化工有限公司", "123.45", "2022-12-31", "x y"),
        ],
    )
    read = read_treasury(path, through=THROUGH)
    assert read == TreasuryFile(
        str(path),
        hashlib.sha256(path.read_bytes()).hexdigest(),
        "utf-8",
        [
            TreasuryRow(
                2,
                "GK2023-0001",
                A,
                "太原测试制造有限公司",
                30_000_000,
                date(2023, 3, 15),
                "奖励",
                (),
            ),
            TreasuryRow(3, "GK2023-0002", B, "Datong Test Co", 1, date(2023, 6, 30), "", ()),
            TreasuryRow(
                4,
                "GK2023-0003",
                C,
                "长治测试化工有限公司",
                12_345,
                date(2022, 12, 31),
                "x y",
                (),
            ),
        ],
    )


def test_the_name_is_the_path_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "t.csv", [payment()])
    monkeypatch.chdir(tmp_path)
    assert read_treasury("./t.csv", through=THROUGH).name == "./t.csv"


@pytest.mark.parametrize(
    ("amount", "fen"),
    [
        ("300000.00", 30_000_000),
        ("0.01", 1),
        ("0.10", 10),
        ("123.45", 12_345),
        ("100000.00", 10_000_000),
        ("92233720368547758.07", 2**63 - 1),  # the most a BIGINT holds
        ("19999999.99", 1_999_999_999),  # a float would make this ...998.99999
    ],
)
def test_amounts_are_read_into_exact_fen(tmp_path: Path, amount: str, fen: int) -> None:
    path = write(tmp_path / "t.csv", [payment(amount=amount)])
    [row] = read_treasury(path, through=THROUGH).rows
    assert row.amount_fen == fen
    assert type(row.amount_fen) is int


def test_spaces_around_the_header_names_and_the_values_are_tolerated(tmp_path: Path) -> None:
    header = " voucher_no , payee_uscc,payee_name ,amount_yuan,paid_on,  purpose "
    path = write(
        tmp_path / "t.csv",
        [f"GK-1, {A} , 太原测试有限公司 , 5.00 , 2023-01-02 , 备注"],
        header=header,
    )
    [row] = read_treasury(path, through=THROUGH).rows
    assert (row.voucher_no, row.payee_uscc, row.payee_name) == ("GK-1", A, "太原测试有限公司")
    assert (row.amount_fen, row.paid_on) == (500, date(2023, 1, 2))
    assert row.purpose == " 备注"  # free text is kept as written


def test_a_utf8_bom_is_accepted_and_hashed(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", [payment(name="山西测试有限公司")], bom=True)
    read = read_treasury(path, through=THROUGH)
    assert [(r.line, r.voucher_no, r.payee_name) for r in read.rows] == [
        (2, "GK2023-0001", "山西测试有限公司")
    ]
    assert read.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")


@pytest.mark.parametrize("encoding", ["gb18030", "GB18030", "gbk", "gb2312", "GBK"])
def test_a_gb18030_file_is_read_on_request(tmp_path: Path, encoding: str) -> None:
    # 𠀀 (U+20000) is outside GBK: only GB18030 has it, so the aliases must read as GB18030.
    names = ["山西𠀀煤机制造有限公司", "晋中测试有限公司"]
    path = write(
        tmp_path / "t.csv",
        [
            payment(
                "国库2023-1",
                A,
                names[0],
                "50000.00",
                purpose=f"首次小升规奖励 {A}/first_entry/2022",
            ),
            payment("国库2023-2", B, names[1], "0.01"),
        ],
        encoding="gb18030",
    )
    read = read_treasury(path, through=THROUGH, encoding=encoding)
    assert read.encoding == "gb18030"
    assert read.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert [(r.line, r.voucher_no, r.payee_name, r.amount_fen) for r in read.rows] == [
        (2, "国库2023-1", names[0], 5_000_000),
        (3, "国库2023-2", names[1], 1),
    ]
    assert read.rows[0].entitlement_ids == (f"{A}/first_entry/2022",)


def test_a_header_without_rows_is_a_valid_empty_file(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", [])
    read = read_treasury(path, through=THROUGH)
    assert read.rows == []
    assert read.sha256 == hashlib.sha256(f"{HEADER}\n".encode()).hexdigest()


def test_blank_lines_are_skipped_but_counted_also_with_crlf(tmp_path: Path) -> None:
    path = write(
        tmp_path / "t.csv",
        [payment("V1"), "", "", payment("V2"), ""],
        newline="\r\n",
    )
    read = read_treasury(path, through=THROUGH)
    assert [(r.line, r.voucher_no, r.paid_on) for r in read.rows] == [
        (2, "V1", date(2023, 3, 15)),
        (5, "V2", date(2023, 3, 15)),
    ]


def test_duplicate_voucher_numbers_are_not_an_error_here(tmp_path: Path) -> None:
    # The reconciliation classes them as duplicate_in_treasury: the reader keeps both.
    path = write(tmp_path / "t.csv", [payment("V1", A), payment("V1", B, amount="1.00")])
    rows = read_treasury(path, through=THROUGH).rows
    assert [(r.line, r.voucher_no, r.payee_uscc, r.amount_fen) for r in rows] == [
        (2, "V1", A, 30_000_000),
        (3, "V1", B, 100),
    ]


def test_a_payment_on_the_reconciliation_date_is_accepted(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", [payment(paid_on=THROUGH.isoformat())])
    assert [r.paid_on for r in read_treasury(path, through=THROUGH).rows] == [THROUGH]


def test_the_file_is_read_from_disk_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "t.csv", [payment("V1"), payment("V2")])
    opened: list[Path] = []
    real_open = Path.open

    def counting_open(self: Path, *args: object, **kwargs: object) -> object:
        opened.append(self)
        return real_open(self, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(Path, "open", counting_open)
    read = read_treasury(path, through=THROUGH)
    assert len(read.rows) == 2
    assert opened == [path]


# Quoted fields spanning lines ---------------------------------------------------------------------


def test_a_quoted_multi_line_purpose_is_kept_and_reported_where_it_starts(tmp_path: Path) -> None:
    spanning = f'V2,{B},"测试, 有限公司",10.00,2023-04-01,"首次小升规奖励\n{B}/first_entry/2022"'
    path = write(tmp_path / "t.csv", [payment("V1"), spanning, payment("V3")])
    rows = read_treasury(path, through=THROUGH).rows
    assert [r.line for r in rows] == [2, 3, 5]
    assert rows[1].payee_name == "测试, 有限公司"
    assert rows[1].purpose == f"首次小升规奖励\n{B}/first_entry/2022"
    assert rows[1].entitlement_ids == (f"{B}/first_entry/2022",)


def test_a_bad_multi_line_record_and_the_line_after_it_are_on_their_own_lines(
    tmp_path: Path,
) -> None:
    spanning = f'V2,{B},名称,10.0,2023-04-01,"第一行\n第二行\n第三行"'  # lines 3-5
    path = write(tmp_path / "t.csv", [payment("V1"), spanning, payment("V3", uscc=BAD_CHECK)])
    assert where(rejected(path)) == [(3, "amount_yuan"), (6, "payee_uscc")]


# Entitlement ids in the purpose -----------------------------------------------------------------


def purposes(tmp_path: Path, *texts: str) -> list[tuple[str, ...]]:
    path = write(tmp_path / "t.csv", [payment(f"V{i}", purpose=t) for i, t in enumerate(texts)])
    return [r.entitlement_ids for r in read_treasury(path, through=THROUGH).rows]


def test_entitlement_ids_are_picked_out_of_chinese_purpose_text(tmp_path: Path) -> None:
    assert purposes(
        tmp_path,
        f"首次小升规奖励 {A}/first_entry/2022",
        f"拨付{A}/first_entry/2022及{B}/retention_2/2023奖励资金",
        f"“{C}/retention/2023”；（{A}/first_entry/2022）",
        "小升规奖励资金",
        "",
    ) == [
        (f"{A}/first_entry/2022",),
        (f"{A}/first_entry/2022", f"{B}/retention_2/2023"),
        (f"{C}/retention/2023", f"{A}/first_entry/2022"),
        (),
        (),
    ]


def test_an_id_written_twice_is_listed_once_in_the_order_first_seen(tmp_path: Path) -> None:
    text = f"{B}/retention/2023，{A}/first_entry/2022，再次：{B}/retention/2023"
    assert purposes(tmp_path, text) == [(f"{B}/retention/2023", f"{A}/first_entry/2022")]


def test_only_ids_of_the_right_shape_with_a_valid_uscc_count(tmp_path: Path) -> None:
    assert purposes(
        tmp_path,
        f"{BAD_CHECK}/first_entry/2022",  # check character wrong
        f"{A}/First_Entry/2022",  # kind not lower case
        f"{A}/first_entry/22",  # year not 4 digits
        f"{A}/first_entry/20221",  # year runs on
        f"X{A}/first_entry/2022",  # the USCC is the tail of a longer code
        f"{A.lower()}/first_entry/2022",
        f"{A}/first_entry/2022年拨付",  # a Chinese character may follow
    ) == [(), (), (), (), (), (), (f"{A}/first_entry/2022",)]


# Each bad field on its line ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "field", "says"),
    [
        ({"voucher": ""}, "voucher_no", "missing"),
        ({"voucher": "  "}, "voucher_no", "missing"),
        ({"voucher": " GK-1"}, "voucher_no", "spaces"),
        ({"voucher": "GK-1 "}, "voucher_no", "spaces"),
        ({"voucher": '"GK\n1"'}, "voucher_no", "one line"),
        ({"uscc": ""}, "payee_uscc", "missing"),
        ({"uscc": BAD_CHECK}, "payee_uscc", "check character"),
        ({"uscc": A[:17]}, "payee_uscc", "18 characters"),
        ({"uscc": A.lower()}, "payee_uscc", "upper case"),
        ({"name": ""}, "payee_name", "missing"),
        ({"name": "   "}, "payee_name", "missing"),
        ({"name": '"山西\r\n测试有限公司"'}, "payee_name", "one line"),
        ({"amount": ""}, "amount_yuan", "missing"),
        ({"amount": "300000"}, "amount_yuan", "300000.00"),
        ({"amount": "300000.0"}, "amount_yuan", "300000.00"),
        ({"amount": "300000.000"}, "amount_yuan", "300000.00"),
        ({"amount": "+300000.00"}, "amount_yuan", "no sign"),
        ({"amount": "-300000.00"}, "amount_yuan", "no sign"),
        ({"amount": '"300,000.00"'}, "amount_yuan", "thousands"),
        ({"amount": "3e5"}, "amount_yuan", "300000.00"),
        ({"amount": "3.00e5"}, "amount_yuan", "300000.00"),
        ({"amount": "0300000.00"}, "amount_yuan", "300000.00"),
        ({"amount": ".50"}, "amount_yuan", "300000.00"),
        ({"amount": "１００.００"}, "amount_yuan", "300000.00"),  # full-width digits
        ({"amount": "¥300000.00"}, "amount_yuan", "300000.00"),
        ({"amount": "0.00"}, "amount_yuan", "not positive"),
        ({"amount": "92233720368547758.08"}, "amount_yuan", "more than"),
        ({"amount": "9" * 5000 + ".00"}, "amount_yuan", "more than"),
        ({"paid_on": ""}, "paid_on", "missing"),
        ({"paid_on": "2023/03/15"}, "paid_on", "YYYY-MM-DD"),
        ({"paid_on": "20230315"}, "paid_on", "YYYY-MM-DD"),
        ({"paid_on": "2023-3-15"}, "paid_on", "YYYY-MM-DD"),
        ({"paid_on": "2023-03-15T00:00"}, "paid_on", "YYYY-MM-DD"),
        ({"paid_on": "２０２３-03-15"}, "paid_on", "YYYY-MM-DD"),
        ({"paid_on": "2023-02-29"}, "paid_on", "not a real date"),
        ({"paid_on": "2023-13-01"}, "paid_on", "not a real date"),
        ({"paid_on": "2023-07-01"}, "paid_on", "cumulative"),
    ],
)
def test_a_bad_field_is_reported_on_its_line_with_its_field(
    tmp_path: Path, values: dict[str, str], field: str, says: str
) -> None:
    path = write(
        tmp_path / "t.csv", [payment("V1"), payment(**{"voucher": "V2", **values}), payment("V3")]
    )
    errors = rejected(path)
    assert where(errors) == [(3, field)]
    assert says in errors[0].reason


def test_a_date_after_the_reconciliation_date_says_the_file_is_cumulative(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", [payment(paid_on="2023-07-01")])
    [error] = rejected(path)
    assert error == RowError(
        2,
        "paid_on",
        "2023-07-01 is after the reconciliation date 2023-06-30: the file is cumulative up to "
        "that date; check the date, or reconcile through 2023-07-01 or later",
    )


def test_a_bad_uscc_gives_the_code_checks_reason(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", [payment(uscc=BAD_CHECK)])
    [error] = rejected(path)
    assert error.reason.startswith(f"{BAD_CHECK!r}: check character is {BAD_CHECK[17]!r}")


def test_every_bad_field_of_a_row_is_listed(tmp_path: Path) -> None:
    path = write(
        tmp_path / "t.csv",
        [payment(" V1", BAD_CHECK, "", "1.0", "2023-02-30", f"{A}/first_entry/2022")],
    )
    assert where(rejected(path)) == [
        (2, "voucher_no"),
        (2, "payee_uscc"),
        (2, "payee_name"),
        (2, "amount_yuan"),
        (2, "paid_on"),
    ]


def test_every_bad_line_is_listed_at_once_and_nothing_is_returned(tmp_path: Path) -> None:
    path = write(
        tmp_path / "t.csv",
        [
            payment("V1"),
            payment("V2", amount="300000"),  # line 3
            payment("V3"),
            payment("V4", uscc=BAD_CHECK),  # line 5
            f'V5,{A},"山西"测试,1.00,2023-01-01,',  # line 6: a stray quote, malformed CSV
            payment("V6", paid_on="2024-01-01"),  # line 7
        ],
    )
    with pytest.raises(TreasuryRejectedError) as caught:
        read_treasury(path, through=THROUGH)
    e = caught.value
    assert isinstance(e, RefusedError)
    assert where(e.errors) == [(3, "amount_yuan"), (5, "payee_uscc"), (6, "row"), (7, "paid_on")]
    assert str(e) == f"{path}: 4 bad line(s); nothing was reconciled"
    assert e.lines() == [f"{path}:{r.line}: {r.field}: {r.reason}" for r in e.errors]
    assert e.lines()[0].startswith(f"{path}:3: amount_yuan: '300000' is not an amount in yuan")


# The file as a whole ------------------------------------------------------------------------------


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b"")
    [error] = rejected(path)
    assert (error.line, error.field) == (1, "header")
    assert "empty" in error.reason and HEADER in error.reason


@pytest.mark.parametrize(
    "header",
    [
        "voucher_no,payee_uscc,payee_name,paid_on,amount_yuan,purpose",  # order
        "voucher_no,payee_uscc,payee_name,amount_yuan,paid_on",  # a column missing
        HEADER + ",remark",  # an extra column
        HEADER.upper(),
        "凭证号,收款人统一社会信用代码,收款人名称,金额,支付日期,用途",
        "voucher_no;payee_uscc;payee_name;amount_yuan;paid_on;purpose",
    ],
)
def test_any_other_header_is_refused_on_line_1(tmp_path: Path, header: str) -> None:
    path = write(tmp_path / "t.csv", [payment()], header=header)
    [error] = rejected(path)
    assert (error.line, error.field) == (1, "header")
    assert error.reason.startswith(f"must be {HEADER} in that order")


@pytest.mark.parametrize(
    "line",
    [
        payment() + ",extra",
        ",".join(payment().split(",")[:5]),
        "GK-1",
        "   ",
    ],
)
def test_a_record_with_the_wrong_number_of_fields_is_a_bad_line(tmp_path: Path, line: str) -> None:
    path = write(tmp_path / "t.csv", [payment("V1"), line, payment("V3")])
    [error] = rejected(path)
    assert (error.line, error.field) == (3, "row")
    assert error.reason.startswith("expected 6 fields")


def test_invalid_bytes_in_utf8_mode_are_a_bad_line_with_a_hint(tmp_path: Path) -> None:
    path = write(
        tmp_path / "t.csv",
        [payment("V1", name="Taiyuan Co"), payment("V2", name="山西测试有限公司"), payment("V3")],
        encoding="gb18030",
    )
    errors = rejected(path)
    assert where(errors) == [(3, "encoding"), (4, "encoding")]  # line 4's default name is Chinese
    assert "--encoding gb18030" in errors[0].reason


def test_a_stray_quote_is_a_malformed_line(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", [f'V1,{A},"山西"测试,1.00,2023-01-01,', payment("V2")])
    assert where(rejected(path)) == [(2, "row")]


def test_an_unknown_encoding_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", [payment()])
    with pytest.raises(CsvFileError, match="encoding must be one of utf-8, gb18030"):
        read_treasury(path, through=THROUGH, encoding="latin-1")


def test_a_missing_file_is_refused_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "none.csv"
    with pytest.raises(CsvFileError, match=f"{path}: cannot read"):
        read_treasury(path, through=THROUGH)


def test_a_directory_is_refused_as_unreadable(tmp_path: Path) -> None:
    with pytest.raises(CsvFileError, match="cannot read"):
        read_treasury(tmp_path, through=THROUGH)

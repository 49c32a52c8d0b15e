"""The register file: header, encodings, physical line numbers, and the validation of each row."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.helpers import HEADER, Firm, ref_uscc, write_register

from adapters.files.register_csv import CsvRegister, RegisterFileError
from domain.register import FieldError, RegisterRow, parse_row

YEAR = 2021
A, B, C, D = (ref_uscc(n) for n in (11, 12, 13, 14))


def read(path: Path, year: int = YEAR, encoding: str = "utf-8") -> list[tuple[int, object]]:
    return list(CsvRegister(path, year, encoding).records())


def fields_of(result: object) -> list[str]:
    assert isinstance(result, list), f"expected errors, got {result!r}"
    return [e.field for e in result]


def row(
    uscc: str = A,
    name: str = "太原重工测试有限公司",
    region: str = "140105",
    industry: str = "C1311",
    size: str = "small",
    route: str = "",
    first_entry: str = "",
) -> list[str]:
    return [uscc, name, region, industry, size, route, first_entry]


def errors(values: list[str], year: int = YEAR) -> dict[str, str]:
    result = parse_row(values, year)
    assert isinstance(result, list), f"expected errors, got {result!r}"
    assert all(isinstance(e, FieldError) for e in result)
    return {e.field: e.reason for e in result}


# Header ----------------------------------------------------------------------------------------


def test_a_file_with_the_exact_header_yields_its_rows(tmp_path: Path) -> None:
    path = write_register(tmp_path / "r.csv", [Firm(A), Firm(B)])
    records = read(path)
    assert [line for line, _ in records] == [2, 3]
    assert all(isinstance(r, RegisterRow) for _, r in records)
    assert [r.uscc for _, r in records] == [A, B]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "header",
    [
        "uscc,name,region_code,industry_code,size_class,first_entry_year,route",  # order
        "uscc,name,region_code,industry_code,size_class,route",  # a column missing
        HEADER + ",remark",  # an extra column
        HEADER.upper(),
        "统一社会信用代码,名称,区划代码,行业代码,规模,途径,首次入规年份",
    ],
)
def test_any_other_header_is_refused_on_line_1(tmp_path: Path, header: str) -> None:
    path = write_register(tmp_path / "r.csv", [Firm(A)], header=header)
    records = read(path)
    assert records[0][0] == 1
    assert fields_of(records[0][1]) == ["header"]


def test_a_file_without_data_rows_yields_nothing(tmp_path: Path) -> None:
    path = write_register(tmp_path / "r.csv", [])
    assert read(path) == []


def test_an_empty_file_is_a_header_error(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_bytes(b"")
    records = read(path)
    assert [(line, fields_of(r)) for line, r in records] == [(1, ["header"])]


# Encodings -------------------------------------------------------------------------------------


def test_a_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = write_register(tmp_path / "r.csv", [Firm(A, name="山西测试有限公司")], bom=True)
    [(line, r)] = read(path)
    assert line == 2
    assert isinstance(r, RegisterRow)
    assert (r.uscc, r.name) == (A, "山西测试有限公司")


@pytest.mark.parametrize("encoding", ["gb18030", "gbk", "GBK"])
def test_a_gb18030_file_is_read_on_request(tmp_path: Path, encoding: str) -> None:
    # 𠀀 (U+20000) is outside GBK: only GB18030 has it, so the alias must read as GB18030.
    name = "山西𠀀煤机制造有限公司"
    path = write_register(tmp_path / "r.csv", [Firm(A, name=name)], encoding="gb18030")
    [(line, r)] = read(path, encoding=encoding)
    assert line == 2
    assert isinstance(r, RegisterRow)
    assert r.name == name


def test_a_gb18030_file_read_as_utf8_is_an_encoding_error_on_its_line(tmp_path: Path) -> None:
    path = write_register(
        tmp_path / "r.csv",
        [Firm(A, name="Taiyuan Test Co"), Firm(B, name="山西测试有限公司"), Firm(C, name="Ltd")],
        encoding="gb18030",
    )
    records = read(path)
    assert [line for line, _ in records] == [2, 3, 4]
    assert isinstance(records[0][1], RegisterRow)
    assert fields_of(records[1][1]) == ["encoding"]
    assert "gb18030" in records[1][1][0].reason  # type: ignore[index]
    assert isinstance(records[2][1], RegisterRow)


def test_an_unsupported_encoding_is_refused(tmp_path: Path) -> None:
    path = write_register(tmp_path / "r.csv", [Firm(A)])
    with pytest.raises(RegisterFileError):
        CsvRegister(path, YEAR, "latin-1")


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RegisterFileError):
        CsvRegister(tmp_path / "none.csv", YEAR)


def test_a_file_changed_after_it_was_opened_is_refused(tmp_path: Path) -> None:
    path = write_register(tmp_path / "r.csv", [Firm(A)])
    register = CsvRegister(path, YEAR)
    write_register(path, [Firm(A), Firm(B)])
    with pytest.raises(RegisterFileError, match="changed"):
        list(register.records())


# Physical line numbers ---------------------------------------------------------------------------


def test_blank_lines_are_skipped_but_counted(tmp_path: Path) -> None:
    path = write_register(tmp_path / "r.csv", [Firm(A), "", "", Firm(B, region_code="149999")])
    records = read(path)
    assert [line for line, _ in records] == [2, 5]
    assert isinstance(records[0][1], RegisterRow)
    assert fields_of(records[1][1]) == ["region_code"]


def test_a_multi_line_record_is_reported_where_it_starts(tmp_path: Path) -> None:
    spanning = f'{B},"山西测试\n有限公司",149999,C1311,small,,'  # lines 3-4, bad region
    path = write_register(tmp_path / "r.csv", [Firm(A), spanning, Firm(C, region_code="149998")])
    records = read(path)
    assert [line for line, _ in records] == [2, 3, 5]
    assert "region_code" in fields_of(records[1][1])
    assert fields_of(records[2][1]) == ["region_code"]


def test_crlf_line_endings_are_read_with_the_same_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    lines = [HEADER, Firm(A).line(), "", Firm(B, industry_code="4711").line()]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("utf-8"))
    records = read(path)
    assert [line for line, _ in records] == [2, 4]
    assert isinstance(records[0][1], RegisterRow)
    assert records[0][1].region_code == "140105"  # type: ignore[attr-defined]
    assert fields_of(records[1][1]) == ["industry_code"]


def test_every_bad_line_of_a_file_is_listed(tmp_path: Path) -> None:
    path = write_register(
        tmp_path / "r.csv",
        [
            Firm(A),
            Firm(B[:17] + ("0" if B[17] != "0" else "1")),  # line 3: check character
            Firm(C, industry_code="F5111"),  # line 4
            Firm(D),
            Firm(ref_uscc(15), route="spin_off"),  # line 6
        ],
    )
    bad = [(line, fields_of(r)) for line, r in read(path) if isinstance(r, list)]
    assert bad == [(3, ["uscc"]), (4, ["industry_code"]), (6, ["route"])]


def test_a_malformed_csv_line_is_reported_on_its_line(tmp_path: Path) -> None:
    malformed = f'{B},"山西"测试,140105,C1311,small,,'
    path = write_register(tmp_path / "r.csv", [Firm(A, region_code="149999"), malformed])
    records = read(path)
    assert records[0][0] == 2 and fields_of(records[0][1]) == ["region_code"]
    assert records[1][0] == 3 and fields_of(records[1][1]) == ["row"]


def test_a_malformed_line_does_not_hide_the_bad_lines_after_it(tmp_path: Path) -> None:
    # All or nothing lists every bad line: a stray quote on line 3 must not stop the listing.
    malformed = f'{B},"山西"测试,140105,C1311,small,,'
    path = write_register(
        tmp_path / "r.csv", [Firm(A), malformed, Firm(C, region_code="149999"), Firm(D)]
    )
    bad = [(line, fields_of(r)) for line, r in read(path) if isinstance(r, list)]
    assert bad == [(3, ["row"]), (4, ["region_code"])]


def test_an_unterminated_quote_is_reported_where_its_record_starts(tmp_path: Path) -> None:
    unterminated = f'{B},"山西测试,140105,C1311,small,,'  # line 3; the quote runs to the end
    path = write_register(tmp_path / "r.csv", [Firm(A), unterminated, Firm(C), Firm(D)])
    bad = [(line, fields_of(r)) for line, r in read(path) if isinstance(r, list)]
    assert bad == [(3, ["row"])]


# parse_row: a valid row ------------------------------------------------------------------------


def test_a_valid_row_is_normalised() -> None:
    r = parse_row(row(region="140212001000", industry="C3130", first_entry="2021"), YEAR)
    assert r == RegisterRow(
        A, "太原重工测试有限公司", "140212", "140200", "3130", "small", "growth", 2021
    )


def test_an_empty_route_means_growth_and_an_empty_size_class_is_unknown() -> None:
    r = parse_row(row(size="", route=""), YEAR)
    assert isinstance(r, RegisterRow)
    assert (r.route, r.size_class, r.first_entry_year) == ("growth", None, None)


@pytest.mark.parametrize(
    "route", ["growth", "new_build", "sector_conversion", "merger", "individual_conversion"]
)
def test_each_route_of_the_policy_is_accepted(route: str) -> None:
    r = parse_row(row(route=route), YEAR)
    assert isinstance(r, RegisterRow) and r.route == route


@pytest.mark.parametrize("size", ["large", "medium", "small", "micro"])
def test_each_size_class_is_accepted(size: str) -> None:
    r = parse_row(row(size=size), YEAR)
    assert isinstance(r, RegisterRow) and r.size_class == size


def test_a_zone_region_is_accepted() -> None:
    r = parse_row(row(region="140171"), YEAR)
    assert isinstance(r, RegisterRow) and (r.region_code, r.city_code) == ("140171", "140100")


def test_first_entry_year_equal_to_the_register_year_is_accepted() -> None:
    r = parse_row(row(first_entry=str(YEAR)), YEAR)
    assert isinstance(r, RegisterRow) and r.first_entry_year == YEAR


def test_surrounding_spaces_are_ignored() -> None:
    r = parse_row([f" {A} ", " 名称 ", " 140105", "C1311 ", " small", "", " 2019 "], YEAR)
    assert r == RegisterRow(A, "名称", "140105", "140100", "1311", "small", "growth", 2019)


# parse_row: each bad-row case of the issue -------------------------------------------------------


@pytest.mark.parametrize(
    "uscc",
    [
        A[:17],  # too short
        A.lower(),
        A[:8] + "I" + A[9:],
        "91350100M000100Y44",  # check character (should be 3)
    ],
)
def test_a_bad_uscc_is_a_uscc_error(uscc: str) -> None:
    assert set(errors(row(uscc=uscc))) == {"uscc"}


def test_a_wrong_check_character_is_named_in_the_reason() -> None:
    assert "check character" in errors(row(uscc="91350100M000100Y44"))["uscc"]


@pytest.mark.parametrize("region", ["149999", "110105", "140100", "14010", "abcdef"])
def test_an_unknown_region_is_a_region_code_error(region: str) -> None:
    assert set(errors(row(region=region))) == {"region_code"}


@pytest.mark.parametrize("industry", ["4711", "E4711", "0511", "F5111", "C0610", "131"])
def test_a_non_industrial_or_malformed_class_is_an_industry_code_error(industry: str) -> None:
    assert set(errors(row(industry=industry))) == {"industry_code"}


@pytest.mark.parametrize("route", ["spin_off", "Growth", "listing"])
def test_an_unknown_route_is_a_route_error(route: str) -> None:
    assert set(errors(row(route=route))) == {"route"}


@pytest.mark.parametrize("size", ["tiny", "Small", "中型"])
def test_an_unknown_size_class_is_a_size_class_error(size: str) -> None:
    assert set(errors(row(size=size))) == {"size_class"}


@pytest.mark.parametrize("column", ["uscc", "name", "region_code", "industry_code"])
def test_a_missing_required_field_is_named(column: str) -> None:
    values = row()
    values[["uscc", "name", "region_code", "industry_code"].index(column)] = "  "
    found = errors(values)
    assert set(found) == {column}
    assert "missing" in found[column]


def test_first_entry_year_after_the_register_year_is_refused() -> None:
    assert set(errors(row(first_entry=str(YEAR + 1)))) == {"first_entry_year"}


@pytest.mark.parametrize("value", ["21", "20211", "two", "2021.0", "-2020"])
def test_first_entry_year_that_is_not_a_year_is_refused(value: str) -> None:
    assert set(errors(row(first_entry=value))) == {"first_entry_year"}


def test_first_entry_year_in_non_ascii_digits_is_a_field_error_not_a_crash() -> None:
    # '²' is a digit to str.isdigit() but not to int(): the row must be refused, not crash.
    assert set(errors(row(first_entry="201²"))) == {"first_entry_year"}


@pytest.mark.parametrize("count", [6, 8, 1])
def test_a_wrong_field_count_is_a_row_error(count: int) -> None:
    values = [*row(), "extra"][:count]
    assert set(errors(values)) == {"row"}


def test_every_bad_field_of_a_row_is_listed() -> None:
    found = errors(row(region="149999", industry="4711", size="tiny", first_entry="2030"))
    assert set(found) == {"region_code", "industry_code", "size_class", "first_entry_year"}

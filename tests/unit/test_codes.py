"""Identifier checks: USCC (GB 32100-2015), organisation code (GB 11714), Shanxi divisions and
GB/T 4754-2017 industrial classes. Expectations come from DOMAIN.md and the issue, by hand."""

from __future__ import annotations

import pytest
from support.helpers import ref_org_check, ref_uscc, ref_uscc_check

from domain.codes import (
    CodeError,
    make_uscc,
    normalize_industry,
    org_check_char,
    resolve_region,
    uscc_check_char,
    validate_uscc,
)

# The worked example of GB 32100-2015 quoted in DOMAIN.md.
STANDARD_FIRST17 = "91350100M000100Y4"
STANDARD_USCC = "91350100M000100Y43"


# USCC check character ----------------------------------------------------------------------------


def test_the_standards_worked_example_sums_to_1640_and_has_check_3() -> None:
    weights = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    assert (
        sum(alphabet.index(c) * w for c, w in zip(STANDARD_FIRST17, weights, strict=True)) == 1640
    )
    assert uscc_check_char(STANDARD_FIRST17) == "3"


def test_the_standards_worked_example_is_a_valid_uscc() -> None:
    assert validate_uscc(STANDARD_USCC) == STANDARD_USCC


@pytest.mark.parametrize(
    "first17",
    [
        "91140105000000010",
        "91140100MA0K1234X",
        "92140171L12345678",
        "11100000000013127",
        "YYYYYYYYYYYYYYYYY",
        "00000000000000000",
    ],
)
def test_uscc_check_char_follows_the_weights_3_pow_i_mod_31(first17: str) -> None:
    assert uscc_check_char(first17) == ref_uscc_check(first17)


def test_a_check_value_of_zero_gives_check_character_0() -> None:
    # All zeros sum to 0: (31 - 0) mod 31 = 0, so the check is '0', not a 32nd character.
    assert uscc_check_char("0" * 17) == "0"


# Organisation code check character ---------------------------------------------------------------


def test_org_check_of_the_standards_example_is_4() -> None:
    # M=22, Y=34: 22*3 + 1*5 + 34*2 = 139; 139 mod 11 = 7; 11 - 7 = 4.
    assert org_check_char("M000100Y") == "4"


def test_org_check_10_is_written_x() -> None:
    # 6 * 2 = 12, 12 mod 11 = 1, 11 - 1 = 10 -> 'X'.
    assert org_check_char("00000006") == "X"


def test_org_check_11_is_written_0() -> None:
    # A sum divisible by 11 gives 11 - 0 = 11 -> '0'.
    assert org_check_char("00000000") == "0"


@pytest.mark.parametrize("body", ["MA0K1234", "12345678", "L0000001", "YYYYYYYY", "00000011"])
def test_org_check_char_follows_the_gb11714_weights(body: str) -> None:
    assert org_check_char(body) == ref_org_check(body)


# Rejections ------------------------------------------------------------------------------------


def _with_valid_checks(prefix: str, division: str, body: str) -> str:
    first17 = prefix + division + body + ref_org_check(body)
    return first17 + ref_uscc_check(first17)


@pytest.mark.parametrize("letter", ["I", "O", "Z", "S", "V"])
def test_uscc_refuses_the_letters_i_o_z_s_v(letter: str) -> None:
    code = STANDARD_USCC[:8] + letter + STANDARD_USCC[9:]
    with pytest.raises(CodeError, match=letter):
        validate_uscc(code)


def test_uscc_refuses_lower_case() -> None:
    with pytest.raises(CodeError, match="upper case"):
        validate_uscc(STANDARD_USCC.lower())


@pytest.mark.parametrize("code", [STANDARD_USCC[:17], STANDARD_USCC + "0", ""])
def test_uscc_refuses_a_wrong_length(code: str) -> None:
    with pytest.raises(CodeError, match="18 characters"):
        validate_uscc(code)


@pytest.mark.parametrize("wrong", ["0", "4", "Y", "A"])
def test_uscc_refuses_a_wrong_check_character(wrong: str) -> None:
    with pytest.raises(CodeError, match="check character"):
        validate_uscc(STANDARD_FIRST17 + wrong)


def test_uscc_refuses_a_wrong_organisation_check_even_with_a_consistent_final_check() -> None:
    first17 = "91350100M000100Y5"  # the organisation check should be 4
    code = first17 + ref_uscc_check(first17)
    with pytest.raises(CodeError, match="organisation code"):
        validate_uscc(code)


def test_uscc_refuses_punctuation_and_spaces() -> None:
    with pytest.raises(CodeError):
        validate_uscc(" " + STANDARD_USCC[1:])
    with pytest.raises(CodeError):
        validate_uscc(STANDARD_USCC[:17] + "-")


def test_uscc_refuses_a_non_numeric_division_part() -> None:
    code = _with_valid_checks("91", "1401A5", "12345678")
    with pytest.raises(CodeError):
        validate_uscc(code)


# make_uscc ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("division", "body"),
    [
        ("140105", "MA0K1234"),
        ("140171", "00000006"),  # organisation check X
        ("141182", "00000000"),  # organisation check 0
        ("350100", "M000100Y"),
    ],
)
def test_make_uscc_produces_a_valid_code(division: str, body: str) -> None:
    code = make_uscc(division, body)
    assert code == _with_valid_checks("91", division, body)
    assert validate_uscc(code) == code


def test_make_uscc_reproduces_the_standards_example() -> None:
    assert make_uscc("350100", "M000100Y") == STANDARD_USCC


def test_the_test_helper_codes_are_valid() -> None:
    for n in (1, 2, 99, 12345678):
        assert validate_uscc(ref_uscc(n)) == ref_uscc(n)


# Regions ---------------------------------------------------------------------------------------


def test_a_six_digit_county_code_resolves_to_its_city() -> None:
    division = resolve_region("140105")  # 小店区, 太原市
    assert (division.code, division.city_code, division.level) == ("140105", "140100", "county")


def test_a_county_level_city_resolves_to_its_prefecture() -> None:
    division = resolve_region("141182")  # 汾阳市, 吕梁市
    assert (division.code, division.city_code) == ("141182", "141100")


def test_a_twelve_digit_statistical_code_is_cut_to_its_county() -> None:
    division = resolve_region("140212001000")  # 新荣区, 大同市
    assert (division.code, division.city_code) == ("140212", "140200")


def test_a_zone_is_accepted() -> None:
    division = resolve_region("140171")  # 山西转型综合改革示范区
    assert (division.code, division.city_code, division.level) == ("140171", "140100", "zone")


def test_a_zone_in_another_city_is_accepted() -> None:
    division = resolve_region("140271")  # 山西大同经济开发区
    assert (division.code, division.city_code) == ("140271", "140200")


@pytest.mark.parametrize("code", ["140100", "141100", "140100000000"])
def test_a_city_code_is_refused(code: str) -> None:
    with pytest.raises(CodeError, match="city"):
        resolve_region(code)


@pytest.mark.parametrize("code", ["149999", "110105", "140199", "149999000000"])
def test_an_unknown_region_code_is_refused(code: str) -> None:
    with pytest.raises(CodeError, match="not a Shanxi division"):
        resolve_region(code)


@pytest.mark.parametrize("code", ["14010", "1401050", "14010500100", "1401050010000", "14O105", ""])
def test_a_region_code_must_have_6_or_12_digits(code: str) -> None:
    with pytest.raises(CodeError):
        resolve_region(code)


# Industry --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("B0610", "0610"),  # coal mining, first division of B
        ("B1200", "1200"),  # last division of B
        ("C1311", "1311"),  # first division of C
        ("C4390", "4390"),  # last division of C
        ("D4411", "4411"),  # first division of D
        ("D4690", "4690"),  # last division of D
    ],
)
def test_an_industrial_class_with_its_section_letter_is_accepted(code: str, expected: str) -> None:
    assert normalize_industry(code) == expected


@pytest.mark.parametrize("code", ["0610", "1311", "3130", "4411", "4690"])
def test_an_industrial_class_without_its_section_letter_is_accepted(code: str) -> None:
    assert normalize_industry(code) == code


@pytest.mark.parametrize("code", ["C0610", "B1311", "D4390", "C4411", "B4411", "A1311"])
def test_a_section_letter_that_does_not_match_the_division_is_refused(code: str) -> None:
    with pytest.raises(CodeError, match="does not match"):
        normalize_industry(code)


@pytest.mark.parametrize("code", ["4711", "E4711", "0511", "A0511", "5111", "F5111", "0111"])
def test_a_non_industrial_division_is_refused(code: str) -> None:
    with pytest.raises(CodeError, match="not industrial"):
        normalize_industry(code)


@pytest.mark.parametrize("code", ["131", "13111", "C131", "C13111", "CC1311", "", "13-1"])
def test_an_industry_code_that_is_not_four_digits_is_refused(code: str) -> None:
    with pytest.raises(CodeError):
        normalize_industry(code)


@pytest.mark.parametrize("code", ["１３１１", "C１３１１", "131²"])
def test_an_industry_code_in_non_ascii_digits_is_refused(code: str) -> None:
    # The class is "4 digits"; full-width or superscript digits are not ASCII digits and must
    # not be stored as a class that no query will ever match.
    with pytest.raises(CodeError):
        normalize_industry(code)

"""(九) read like the clause: the identity number's check (GB 11643, ISO 7064 MOD 11-2, worked
from DOMAIN.md), a contract of a year or more, at most 36 months a hire from the month its first
contract starts, the hire in the first-entry window, the subsidy what the employer paid."""

from __future__ import annotations

from datetime import date

import pytest
from support.persons import ref_person_id, wrong_check

from domain.enterprise import FirmState
from domain.persons import PersonIdError, id_check_char, mask, validate_person_id
from domain.policy import Route, SocialInsuranceRule, load_policy
from domain.social_insurance import (
    Contract,
    Hire,
    SubsidyState,
    claim_rows,
    contract_problem,
    fund_totals,
)

RULE = SocialInsuranceRule()


def test_the_worked_example_of_domain_md_is_valid() -> None:
    # 1*7+1*9+0*10+1*5+0*8+5*4+1*2+9*1+4*6+9*3+1*7+2*9+3*10+1*5+0*8+0*4+2*2 = 167; 167 % 11 = 2
    assert id_check_char("11010519491231002") == "X"
    assert validate_person_id("11010519491231002X") == "11010519491231002X"
    assert validate_person_id(" 11010519491231002x ") == "11010519491231002X"


def test_a_wrong_check_character_is_refused_without_quoting_the_number() -> None:
    good = ref_person_id("140105", "19900101", "123")
    with pytest.raises(PersonIdError) as refused:
        validate_person_id(wrong_check(good))
    assert "check character" in str(refused.value) and wrong_check(good) not in str(refused.value)
    assert mask(good) == good[:3] + "*" * 11 + good[-4:]


@pytest.mark.parametrize(
    ("number", "why"),
    [
        ("1101051949123100", "18 characters"),
        ("11010519491331002X", "birth date"),  # month 13
        ("11010518990101002X", "birth date"),  # before 1900
        ("1101051949123100A2", "17 digits"),
    ],
)
def test_malformed_numbers_are_refused(number: str, why: str) -> None:
    with pytest.raises(PersonIdError, match=why):
        validate_person_id(number)


def test_a_contract_runs_a_year_or_more_or_is_open_ended() -> None:
    assert contract_problem(date(2023, 1, 1), date(2023, 12, 31), RULE) is None
    assert "shorter than 1 year" in (
        contract_problem(date(2023, 1, 1), date(2023, 12, 30), RULE) or ""
    )
    assert contract_problem(date(2024, 2, 29), date(2025, 2, 28), RULE) is None
    assert contract_problem(date(2024, 2, 29), date(2025, 2, 27), RULE) is not None
    assert contract_problem(date(2023, 5, 1), None, RULE) is None


def entrant(year: int) -> FirmState:
    s = FirmState("U", "", "", "", None)
    s.first_entry_year, s.route = year, Route.GROWTH
    return s


def state(start: date, months: dict[str, int], person: str = "p") -> SubsidyState:
    s = SubsidyState("U")
    s.hires[person] = Hire(person, [Contract(start, None)])
    for month, fen in months.items():
        s.contributions[(person, month)] = fen
    return s


def test_36_months_from_the_month_the_hire_starts_then_nothing() -> None:
    # Started 2022-03-15: 2022-03 is month 1, 2025-02 month 36.
    s = state(date(2022, 3, 15), {"2022-03": 100, "2025-02": 200, "2025-03": 300})
    rows = claim_rows(entrant(2022), s, RULE)
    assert [(r.month, r.eligible, r.subsidy_fen) for r in rows] == [
        ("2022-03", True, 100),
        ("2025-02", True, 200),
        ("2025-03", False, 0),
    ]
    assert {r.last_eligible_month for r in rows} == {"2025-02"}
    total = fund_totals(rows)[0]
    assert (total.fund, total.employer_paid_fen, total.subsidy_fen) == ("employment", 600, 300)


def test_the_hire_starts_in_the_entry_year_or_the_two_after_it() -> None:
    months = {"2025-01": 100}
    assert claim_rows(entrant(2022), state(date(2024, 12, 31), months), RULE)[0].eligible
    late = claim_rows(entrant(2022), state(date(2025, 1, 1), months), RULE)[0]
    assert not late.eligible and "2022-2024" in (late.why_not or "")
    early = claim_rows(entrant(2022), state(date(2021, 12, 1), months), RULE)[0]
    assert not early.eligible
    anywhen = SocialInsuranceRule(hire_window_years=None)
    assert claim_rows(entrant(2022), state(date(2025, 1, 1), months), anywhen)[0].eligible


def test_a_firm_no_longer_a_first_entrant_is_owed_nothing() -> None:
    s = FirmState("U", "", "", "", None)
    rows = claim_rows(s, state(date(2022, 3, 1), {"2022-03": 100}), RULE)
    assert not rows[0].eligible and rows[0].subsidy_fen == 0


def test_the_packaged_policies_keep_their_hashes_and_take_the_defaults() -> None:
    policy = load_policy()
    assert policy.social_insurance is None and policy.social_insurance_rule == RULE
    assert (RULE.clause, RULE.months, RULE.min_contract_years, RULE.hire_window_years) == (
        "(九)",
        36,
        1,
        3,
    )

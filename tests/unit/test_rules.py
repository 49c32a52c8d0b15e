"""The pure rules: entitlements (四)(五) and windows (八)(十一) from a firm's register history, and
the policy as validated data. Expected awards are worked out by hand from DOMAIN.md and the policy
text (300,000 / 50,000 / 100,000 yuan; paid the fiscal year after the decision)."""

from __future__ import annotations

import tomllib
from datetime import date
from importlib import resources
from typing import Any

import pytest
from pydantic import ValidationError
from support.helpers import ref_uscc

from domain.policy import Policies, Policy, Route, SizeClass, load_policy, policy_from_json
from domain.rules import History, entitlements, windows

U = ref_uscc(1001)
FIRST_ENTRY_FEN = 300_000 * 100
RETENTION_2Y_FEN = 50_000 * 100
RETENTION_3Y_FEN = 100_000 * 100


def policy_data() -> dict[str, Any]:
    """The packaged policy file as plain data, to be edited and validated again."""
    text = (
        resources.files("domain").joinpath("policies", "jinbanfa-2020-38.toml").read_text("utf-8")
    )
    return tomllib.loads(text)


@pytest.fixture
def policy() -> Policy:
    return load_policy()


@pytest.fixture
def entry_counts_policy() -> Policy:
    data = policy_data()
    data["id"] = "jinbanfa-2020-38-entry-year-counts"
    data["retention"]["counting"] = "entry_year_counts"
    return Policy.model_validate(data)


def history(
    years: range | set[int],
    *,
    first: int | None,
    exits: set[int] | None = None,
    baseline: int | None = None,
    route: Route | None = Route.GROWTH,
    size: SizeClass | None = None,
    uscc: str = U,
) -> History:
    return History(
        uscc=uscc,
        years=frozenset(years),
        exit_years=frozenset(exits or ()),
        baseline_year=baseline,
        first_entry_year=first,
        route=route if first is not None else None,
        entry_size_class=size,
    )


def awards(h: History, p: Policy) -> list[tuple[str, int, int]]:
    """(kind, decided year, amount in fen) of each entitlement."""
    return [(e.kind, e.decided_year, e.amount_fen) for e in entitlements(h, Policies.of([p]))]


# (四) first entry ------------------------------------------------------------------------------


def test_first_entry_award_is_300000_yuan_decided_in_the_entry_year(policy: Policy) -> None:
    [award] = entitlements(history({2021}, first=2021), Policies.of([policy]))
    assert award.kind == "first_entry"
    assert award.amount_fen == 30_000_000
    assert award.decided_year == 2021
    assert award.clause == "(四)"
    assert award.policy_id == "jinbanfa-2020-38"
    assert award.entitlement_id == f"{U}/first_entry/2021"
    assert award.uscc == U


@pytest.mark.parametrize("route", list(Route))
def test_every_route_of_the_38_policy_earns_the_first_entry_award(
    policy: Policy, route: Route
) -> None:
    # (一) growth, merger, individual conversion; (二) new build and (三) sector conversion are
    # 视同小升规 and 享受相关奖励政策.
    assert awards(history({2021}, first=2021, route=route), policy) == [
        ("first_entry", 2021, FIRST_ENTRY_FEN)
    ]


# (五) retention: the worked table of DOMAIN.md, a firm first on the register in 2021 ------------


def test_literal_reading_2021_to_2024_earns_5wan_in_2023_and_10wan_in_2024(policy: Policy) -> None:
    assert policy.retention.counting == "years_after_entry"  # the default reading
    assert awards(history(range(2021, 2025), first=2021), policy) == [
        ("first_entry", 2021, FIRST_ENTRY_FEN),
        ("retention_2y", 2023, RETENTION_2Y_FEN),
        ("retention_3y", 2024, RETENTION_3Y_FEN),
    ]


def test_literal_reading_2021_2022_then_absent_2023_earns_no_retention_award(
    policy: Policy,
) -> None:
    h = history({2021, 2022}, first=2021, exits={2023})
    assert awards(h, policy) == [("first_entry", 2021, FIRST_ENTRY_FEN)]


def test_literal_reading_2021_only_earns_no_retention_award(policy: Policy) -> None:
    h = history({2021}, first=2021, exits={2022})
    assert awards(h, policy) == [("first_entry", 2021, FIRST_ENTRY_FEN)]


def test_entry_year_counts_2021_to_2024_earns_5wan_in_2022_and_10wan_in_2023(
    entry_counts_policy: Policy,
) -> None:
    assert awards(history(range(2021, 2025), first=2021), entry_counts_policy) == [
        ("first_entry", 2021, FIRST_ENTRY_FEN),
        ("retention_2y", 2022, RETENTION_2Y_FEN),
        ("retention_3y", 2023, RETENTION_3Y_FEN),
    ]


def test_entry_year_counts_2021_2022_then_absent_2023_earns_5wan_in_2022(
    entry_counts_policy: Policy,
) -> None:
    h = history({2021, 2022}, first=2021, exits={2023})
    assert awards(h, entry_counts_policy) == [
        ("first_entry", 2021, FIRST_ENTRY_FEN),
        ("retention_2y", 2022, RETENTION_2Y_FEN),
    ]


def test_entry_year_counts_2021_only_earns_no_retention_award(
    entry_counts_policy: Policy,
) -> None:
    h = history({2021}, first=2021, exits={2022})
    assert awards(h, entry_counts_policy) == [("first_entry", 2021, FIRST_ENTRY_FEN)]


def test_a_retention_award_is_not_decided_before_its_register_year_is_known(
    policy: Policy,
) -> None:
    # Registers 2021 and 2022 imported, 2023 not yet: the literal 5万 needs 2023.
    assert awards(history({2021, 2022}, first=2021), policy) == [
        ("first_entry", 2021, FIRST_ENTRY_FEN)
    ]


def test_retention_awards_cite_clause_five_and_the_policy(policy: Policy) -> None:
    result = entitlements(history(range(2021, 2025), first=2021), Policies.of([policy]))
    retention = [e for e in result if e.kind != "first_entry"]
    assert [e.clause for e in retention] == ["(五)", "(五)"]
    assert {e.policy_id for e in result} == {"jinbanfa-2020-38"}
    assert [e.entitlement_id for e in retention] == [
        f"{U}/retention_2y/2023",
        f"{U}/retention_3y/2024",
    ]


# (五) an exit ends the count for good -------------------------------------------------------------


def test_retention_award_is_lost_for_good_after_an_exit(policy: Policy) -> None:
    # On 2021-2022, absent 2023, back 2024-2026: the years after the re-entry count for nothing.
    h = history({2021, 2022, 2024, 2025, 2026}, first=2021, exits={2023})
    assert awards(h, policy) == [("first_entry", 2021, FIRST_ENTRY_FEN)]


def test_retention_3y_is_lost_after_an_exit_under_entry_year_counts(
    entry_counts_policy: Policy,
) -> None:
    # 5万 decided 2022 was earned before the exit; the 10万 (2021-2023) never is.
    h = history({2021, 2022, 2024, 2025}, first=2021, exits={2023})
    assert awards(h, entry_counts_policy) == [
        ("first_entry", 2021, FIRST_ENTRY_FEN),
        ("retention_2y", 2022, RETENTION_2Y_FEN),
    ]


def test_a_re_entrant_earns_nothing(policy: Policy) -> None:
    # Back on the register in 2021 after leaving: no route, so never a first entrant.
    h = History(
        uscc=U,
        years=frozenset(range(2021, 2025)),
        exit_years=frozenset(),
        baseline_year=None,
        first_entry_year=2018,
        route=None,
        entry_size_class=None,
    )
    assert entitlements(h, Policies.of([policy])) == []
    assert windows(h, Policies.of([policy])) == []


def test_a_firm_with_an_unknown_first_entry_earns_nothing(policy: Policy) -> None:
    h = history(range(2020, 2025), first=None, baseline=2020)
    assert entitlements(h, Policies.of([policy])) == []
    assert windows(h, Policies.of([policy])) == []


# Payment lag -----------------------------------------------------------------------------------


def test_every_award_is_due_in_the_fiscal_year_after_it_is_decided(policy: Policy) -> None:
    result = entitlements(history(range(2021, 2025), first=2021), Policies.of([policy]))
    assert [(e.decided_year, e.due_fiscal_year) for e in result] == [
        (2021, 2022),
        (2023, 2024),
        (2024, 2025),
    ]


def test_the_payment_lag_is_a_policy_parameter() -> None:
    data = policy_data()
    data["id"] = "same-year-payment"
    data["payment"]["lag_years"] = 0
    same_year = Policy.model_validate(data)
    result = entitlements(history(range(2021, 2025), first=2021), Policies.of([same_year]))
    assert [(e.decided_year, e.due_fiscal_year) for e in result] == [
        (2021, 2021),
        (2023, 2023),
        (2024, 2024),
    ]


# Baseline (DOMAIN.md default 5) ------------------------------------------------------------------


def test_a_2019_entrant_on_a_2020_baseline_earns_retention_in_2021_and_2022(
    policy: Policy,
) -> None:
    h = history(range(2020, 2023), first=2019, baseline=2020)
    result = entitlements(h, Policies.of([policy]))
    assert [(e.kind, e.decided_year, e.due_fiscal_year, e.amount_fen) for e in result] == [
        ("retention_2y", 2021, 2022, RETENTION_2Y_FEN),
        ("retention_3y", 2022, 2023, RETENTION_3Y_FEN),
    ]


def test_a_2019_entrants_first_entry_award_decided_before_the_ledger_is_not_owed(
    policy: Policy,
) -> None:
    h = history(range(2020, 2023), first=2019, baseline=2020)
    assert "first_entry" not in {e.kind for e in entitlements(h, Policies.of([policy]))}


def test_a_baseline_firm_that_entered_in_the_baseline_year_gets_retention_but_no_entry_award(
    policy: Policy,
) -> None:
    h = history(range(2020, 2024), first=2020, baseline=2020)
    assert awards(h, policy) == [
        ("retention_2y", 2022, RETENTION_2Y_FEN),
        ("retention_3y", 2023, RETENTION_3Y_FEN),
    ]


def test_a_baseline_firm_from_long_before_the_ledger_is_owed_nothing(policy: Policy) -> None:
    h = history(range(2020, 2025), first=2015, baseline=2020)
    assert entitlements(h, Policies.of([policy])) == []


def test_a_2019_entrant_that_leaves_in_2021_earns_nothing_on_the_ledger(policy: Policy) -> None:
    h = history({2020}, first=2019, baseline=2020, exits={2021})
    assert entitlements(h, Policies.of([policy])) == []


def test_entry_year_counts_on_a_baseline_owes_only_awards_decided_after_it(
    entry_counts_policy: Policy,
) -> None:
    # Entered 2019: 5万 decided 2020 (the baseline year, before the ledger), 10万 decided 2021.
    h = history(range(2020, 2023), first=2019, baseline=2020)
    assert awards(h, entry_counts_policy) == [("retention_3y", 2021, RETENTION_3Y_FEN)]


# Eligible routes -------------------------------------------------------------------------------


def test_a_route_the_policy_does_not_list_earns_nothing() -> None:
    data = policy_data()
    data["id"] = "no-new-builds"
    data["eligible_routes"] = ["growth", "merger", "individual_conversion"]
    strict = Policy.model_validate(data)
    assert (
        entitlements(
            history(range(2021, 2025), first=2021, route=Route.NEW_BUILD), Policies.of([strict])
        )
        == []
    )
    assert (
        entitlements(
            history(range(2021, 2025), first=2021, route=Route.SECTOR_CONVERSION),
            Policies.of([strict]),
        )
        == []
    )
    # ... while a listed route still earns all three awards.
    assert len(entitlements(history(range(2021, 2025), first=2021), Policies.of([strict]))) == 3


# Windows (八) and (十一) -------------------------------------------------------------------------


def by_window(h: History, p: Policy) -> dict[str, Any]:
    return {w.window: w for w in windows(h, Policies.of([p]))}


@pytest.mark.parametrize("size", [SizeClass.SMALL, SizeClass.MICRO])
def test_a_small_or_micro_first_entrant_gets_a_guarantee_window_capped_at_1_percent(
    policy: Policy, size: SizeClass
) -> None:
    g = by_window(history(range(2021, 2025), first=2021, size=size), policy)["guarantee"]
    assert g.starts_on == date(2021, 1, 1)
    assert g.ends_on == date(2023, 12, 31)
    assert g.fee_cap_bp == 100
    assert g.clause == "(八)"
    assert g.size_class == size


@pytest.mark.parametrize("size", [SizeClass.MEDIUM, SizeClass.LARGE])
def test_a_medium_or_large_first_entrant_gets_no_guarantee_window(
    policy: Policy, size: SizeClass
) -> None:
    assert set(by_window(history(range(2021, 2025), first=2021, size=size), policy)) == {"energy"}


def test_a_first_entrant_of_unknown_size_gets_a_guarantee_window_with_size_class_none(
    policy: Policy,
) -> None:
    g = by_window(history(range(2021, 2025), first=2021, size=None), policy)["guarantee"]
    assert g.size_class is None
    assert g.fee_cap_bp == 100


def test_the_energy_window_runs_three_years_and_stays_open_while_on_the_register(
    policy: Policy,
) -> None:
    e = by_window(history(range(2021, 2025), first=2021), policy)["energy"]
    assert (e.starts_on, e.ends_on, e.closed_on) == (date(2021, 1, 1), date(2023, 12, 31), None)
    assert e.clause == "(十一)"
    assert e.fee_cap_bp is None


def test_the_energy_window_closes_on_1_january_of_the_first_absent_year(policy: Policy) -> None:
    h = history({2021, 2022, 2024}, first=2021, exits={2023})
    assert by_window(h, policy)["energy"].closed_on == date(2023, 1, 1)


def test_the_energy_window_stays_closed_after_a_re_entry(policy: Policy) -> None:
    h = history({2021, 2023}, first=2021, exits={2022})
    assert by_window(h, policy)["energy"].closed_on == date(2022, 1, 1)


def test_an_exit_after_the_energy_window_does_not_close_it(policy: Policy) -> None:
    h = history(range(2021, 2024), first=2021, exits={2024})
    assert by_window(h, policy)["energy"].closed_on is None


def test_an_exit_does_not_shorten_the_guarantee_window(policy: Policy) -> None:
    h = history({2021}, first=2021, exits={2022}, size=SizeClass.SMALL)
    g = by_window(h, policy)["guarantee"]
    assert (g.ends_on, g.closed_on) == (date(2023, 12, 31), None)


def test_a_guarantee_window_is_active_from_1_january_to_31_december_two_years_on(
    policy: Policy,
) -> None:
    g = by_window(history({2021}, first=2021, size=SizeClass.MICRO), policy)["guarantee"]
    assert not g.active_on(date(2020, 12, 31))
    assert g.active_on(date(2021, 1, 1))
    assert g.active_on(date(2023, 12, 31))
    assert not g.active_on(date(2024, 1, 1))


def test_a_closed_energy_window_is_inactive_from_its_closing_day(policy: Policy) -> None:
    e = by_window(history({2021, 2022}, first=2021, exits={2023}), policy)["energy"]
    assert e.active_on(date(2022, 12, 31))
    assert not e.active_on(date(2023, 1, 1))
    assert not e.active_on(date(2023, 6, 30))


def test_a_baseline_entrants_windows_start_in_its_entry_year(policy: Policy) -> None:
    e = by_window(history(range(2020, 2023), first=2019, baseline=2020), policy)["energy"]
    assert (e.starts_on, e.ends_on) == (date(2019, 1, 1), date(2021, 12, 31))


# The policy as validated data -------------------------------------------------------------------


def test_the_packaged_policy_loads_with_the_38_amounts(policy: Policy) -> None:
    assert policy.id == "jinbanfa-2020-38"
    assert policy.issued_on == date(2020, 12, 25)
    assert policy.first_entry.amount_fen == FIRST_ENTRY_FEN
    assert {a.kind: (a.consecutive_years, a.amount_fen) for a in policy.retention.awards} == {
        "retention_2y": (2, RETENTION_2Y_FEN),
        "retention_3y": (3, RETENTION_3Y_FEN),
    }
    assert policy.payment.lag_years == 1
    assert policy.windows.guarantee.fee_cap_bp == 100
    assert set(policy.windows.guarantee.size_classes) == {SizeClass.SMALL, SizeClass.MICRO}
    assert policy.windows.guarantee.years == policy.windows.energy.years == 3
    assert set(policy.eligible_routes) == set(Route)


@pytest.mark.parametrize("bad", [30_000_000.0, "30000000", True, 0, -1])
def test_an_amount_must_be_a_strict_positive_int(bad: Any) -> None:
    data = policy_data()
    data["first_entry"]["amount_fen"] = bad
    with pytest.raises(ValidationError):
        Policy.model_validate(data)


@pytest.mark.parametrize("bad", [5_000_000.0, "5000000", True])
def test_a_retention_amount_must_be_a_strict_int(bad: Any) -> None:
    data = policy_data()
    data["retention"]["awards"][0]["amount_fen"] = bad
    with pytest.raises(ValidationError):
        Policy.model_validate(data)


def test_an_unknown_top_level_key_is_refused() -> None:
    data = policy_data()
    data["strategic_emerging_bonus_pct"] = 30
    with pytest.raises(ValidationError):
        Policy.model_validate(data)


def test_an_unknown_nested_key_is_refused() -> None:
    data = policy_data()
    data["first_entry"]["amont_fen"] = 1  # a typo must not pass silently
    with pytest.raises(ValidationError):
        Policy.model_validate(data)


def test_an_unknown_counting_reading_is_refused() -> None:
    data = policy_data()
    data["retention"]["counting"] = "calendar_years"
    with pytest.raises(ValidationError):
        Policy.model_validate(data)


def test_an_unknown_route_is_refused() -> None:
    data = policy_data()
    data["eligible_routes"] = ["growth", "spin_off"]
    with pytest.raises(ValidationError):
        Policy.model_validate(data)


def test_the_content_hash_is_stable() -> None:
    a, b = load_policy(), Policy.model_validate(policy_data())
    assert a.content_hash == b.content_hash
    assert len(a.content_hash) == 64
    assert int(a.content_hash, 16) >= 0
    assert policy_from_json(a.canonical_json()).content_hash == a.content_hash


def test_the_content_hash_does_not_depend_on_key_order() -> None:
    data = policy_data()
    reordered = dict(reversed(list(data.items())))
    assert Policy.model_validate(reordered).content_hash == load_policy().content_hash


def test_the_content_hash_changes_when_an_amount_changes() -> None:
    data = policy_data()
    data["first_entry"]["amount_fen"] = 39_000_000  # +30% (2023 work plan)
    assert Policy.model_validate(data).content_hash != load_policy().content_hash


def test_the_content_hash_changes_with_the_counting_reading() -> None:
    data = policy_data()
    data["retention"]["counting"] = "entry_year_counts"
    assert Policy.model_validate(data).content_hash != load_policy().content_hash

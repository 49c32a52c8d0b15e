"""Policy versions by first-entry year, amounts as data (bonuses by designation, amounts by city),
the one rounding rule, and the other provinces' shapes written as policy files. Amounts worked by
hand from the policy texts (docs/policy/)."""

from __future__ import annotations

import tomllib
from datetime import date
from importlib import resources
from typing import Any

import pytest
from pydantic import ValidationError
from support.helpers import HASH_38

from domain.policy import DesignationKind, Policies, Policy, Route, load_policy, with_percent
from domain.rules import Designation, History, entitlements, windows

U = "91140105MA0ADU9E0E"
TAIYUAN, DATONG = "140100", "140200"
YUAN = 100
SE = DesignationKind.STRATEGIC_EMERGING


def packaged(name: str) -> dict[str, Any]:
    text = resources.files("domain").joinpath("policies", name).read_text("utf-8")
    return tomllib.loads(text)


P38 = load_policy()
P2025 = load_policy(
    resources.files("domain").joinpath("policies", "jincaiguijian-2025-1.toml")  # type: ignore[arg-type]
)


def firm(
    entry: int,
    last: int,
    *,
    designations: tuple[Designation, ...] = (),
    city: str = TAIYUAN,
    exits: frozenset[int] = frozenset(),
) -> History:
    years = frozenset(range(entry, last + 1)) - exits
    return History(
        uscc=U,
        years=years,
        exit_years=exits,
        baseline_year=None,
        first_entry_year=entry,
        route=Route.GROWTH,
        entry_size_class=None,
        cities=tuple((y, city) for y in sorted(years)),
        city=city,
        designations=designations,
    )


def se(valid_from: str, valid_to: str | None = None) -> Designation:
    return Designation(
        SE, date.fromisoformat(valid_from), valid_to and date.fromisoformat(valid_to), "晋发改-1"
    )


def awards(h: History, *versions: Policy) -> list[tuple[str, int, int, str]]:
    """(kind, decided year, amount in yuan, deciding version) of each award."""
    return [
        (e.kind, e.decided_year, e.amount_fen // YUAN, e.policy_id)
        for e in entitlements(h, Policies.of(versions))
    ]


# Versions by first-entry year -------------------------------------------------------------------


def test_the_38_hash_is_unchanged_by_the_new_optional_keys() -> None:
    assert P38.content_hash == HASH_38
    assert "applies_from" not in P38.canonical_json()
    assert "bonuses" not in P38.canonical_json()


def test_cohorts_keep_their_rules_and_later_cohorts_take_the_2025_version() -> None:
    both = (P38, P2025)
    # A 2024 first entrant keeps 38号 for every award, the 2026 and 2027 retention included.
    assert awards(firm(2024, 2027), *both) == [
        ("first_entry", 2024, 300_000, "jinbanfa-2020-38"),
        ("retention_2y", 2026, 50_000, "jinbanfa-2020-38"),
        ("retention_3y", 2027, 100_000, "jinbanfa-2020-38"),
    ]
    # A 2025 first entrant is decided by the 2025 version; strategic emerging: +30%.
    assert awards(firm(2025, 2027), *both) == [
        ("first_entry", 2025, 300_000, "jincaiguijian-2025-1"),
        ("retention_2y", 2027, 50_000, "jincaiguijian-2025-1"),
    ]
    designated = firm(2025, 2027, designations=(se("2024-06-01", "2025-01-15"),))
    assert awards(designated, *both)[0] == ("first_entry", 2025, 390_000, "jincaiguijian-2025-1")
    # The retention awards of the 2025 version carry no bonus.
    assert awards(designated, *both)[1] == ("retention_2y", 2027, 50_000, "jincaiguijian-2025-1")
    # Under 38号 alone a designation changes nothing.
    assert awards(designated, P38)[0] == ("first_entry", 2025, 300_000, "jinbanfa-2020-38")


def test_a_designation_counts_only_if_valid_on_a_day_of_the_first_entry_year() -> None:
    late = firm(2025, 2026, designations=(se("2026-01-01"),))
    early = firm(2025, 2026, designations=(se("2023-01-01", "2024-12-31"),))
    last_day = firm(2025, 2026, designations=(se("2025-12-31"),))
    assert [awards(h, P38, P2025)[0][2] for h in (late, early, last_day)] == [
        300_000,
        300_000,
        390_000,
    ]


def test_the_version_with_the_latest_applies_from_not_after_the_entry_year_governs() -> None:
    def version(pid: str, start: int | None) -> Policy:
        data = packaged("jinbanfa-2020-38.toml")
        data["id"] = pid
        if start is not None:
            data["applies_from"] = start
        return Policy.model_validate(data)

    a, b, c = version("a", None), version("b", 2023), version("c", 2026)
    versions = Policies.of([c, a, b])
    assert [versions.governing(y).id for y in (2019, 2022, 2023, 2025, 2026, 2030)] == [
        "a",
        "a",
        "b",
        "b",
        "c",
        "c",
    ]
    with pytest.raises(ValueError, match="same year"):
        Policies.of([a, b, version("d", 2023)])


def test_the_windows_follow_the_governing_version() -> None:
    data = packaged("jincaiguijian-2025-1.toml")
    data["id"] = "windows-5y"
    data["windows"]["energy"]["years"] = 5
    longer = Policy.model_validate(data)
    (energy_2024,) = [
        w for w in windows(firm(2024, 2027), Policies.of([P38, longer])) if w.window == "energy"
    ]
    (energy_2025,) = [
        w for w in windows(firm(2025, 2027), Policies.of([P38, longer])) if w.window == "energy"
    ]
    assert energy_2024.ends_on == date(2026, 12, 31)
    assert energy_2025.ends_on == date(2029, 12, 31)


# Amounts as data --------------------------------------------------------------------------------


def test_bonuses_add_to_the_base_and_round_half_up_to_the_fen() -> None:
    assert with_percent(30_000_000, 30) == 39_000_000
    assert with_percent(30_000_000, 30 + 10) == 42_000_000  # 140%, not 1.3 × 1.1
    assert with_percent(5, 30) == 7  # 6.5 fen -> 7
    assert with_percent(3, 50) == 5  # 4.5 fen -> 5
    assert with_percent(33_333_333, 30) == 43_333_333  # 43,333,332.9 -> 43,333,333
    assert with_percent(11, 10) == 12  # 12.1 -> 12


def test_two_bonuses_on_one_award() -> None:
    data = packaged("jincaiguijian-2025-1.toml")
    data["id"] = "two-bonuses"
    data["first_entry"]["bonuses"] = [
        {"designation": "strategic_emerging", "percent": 30},
        {"designation": "tech_sme", "percent": 10},
    ]
    two = Policy.model_validate(data)
    tech = Designation(DesignationKind.TECH_SME, date(2025, 3, 1), date(2028, 2, 28), "科技厅-7")
    h = firm(2025, 2025, designations=(se("2025-01-01"), tech))
    assert awards(h, P38, two) == [("first_entry", 2025, 420_000, "two-bonuses")]
    (award,) = entitlements(h, Policies.of([P38, two]))
    assert award.base_fen == 30_000_000
    assert [b.designation for b in award.bonuses] == [SE, DesignationKind.TECH_SME]


def test_a_policy_file_with_bad_amount_keys_is_refused_naming_each() -> None:
    data = packaged("jincaiguijian-2025-1.toml")
    data["first_entry"]["bonuses"] = [{"designation": "national_champion", "percent": 30}]
    data["first_entry"]["by_city"] = {"999999": 100}
    data["applies_from"] = "2025"
    with pytest.raises(ValidationError) as caught:
        Policy.model_validate(data)
    where = {".".join(map(str, e["loc"])) for e in caught.value.errors()}
    assert "applies_from" in where
    assert "first_entry.by_city" in where
    assert "first_entry.bonuses.0.designation" in where


# The other provinces' shapes, as policy files (README: "Writing another province's shape") ------


def shape(pid: str, **changes: Any) -> Policy:
    data = packaged("jinbanfa-2020-38.toml")
    data["id"] = pid
    for path, value in changes.items():
        node = data
        *parents, last = path.split("__")
        for p in parents:
            node = node[p]
        node[last] = value
    return Policy.model_validate(data)


def test_yanan_pays_40_percent_on_entry_and_60_percent_a_year_later_if_still_on_the_register() -> (
    None
):
    yanan = shape(
        "yanan",
        first_entry__amount_fen=120_000 * YUAN,
        retention__awards=[
            {"kind": "retention_1y", "consecutive_years": 1, "amount_fen": 180_000 * YUAN}
        ],
    )
    assert awards(firm(2024, 2026), yanan) == [
        ("first_entry", 2024, 120_000, "yanan"),
        ("retention_1y", 2025, 180_000, "yanan"),
    ]
    # Off the register the year after: the 60% is never owed.
    assert awards(firm(2024, 2024, exits=frozenset()), yanan) == [
        ("first_entry", 2024, 120_000, "yanan")
    ]


def test_guangdong_pays_by_region_tier() -> None:
    # Written with Shanxi's division codes: Taiyuan stands for the Pearl River Delta's tier.
    guangdong = shape(
        "guangdong-tiers",
        first_entry__amount_fen=200_000 * YUAN,
        first_entry__by_city={TAIYUAN: 100_000 * YUAN},
        retention__awards=[],
    )
    assert awards(firm(2024, 2024, city=TAIYUAN), guangdong) == [
        ("first_entry", 2024, 100_000, "guangdong-tiers")
    ]
    assert awards(firm(2024, 2024, city=DATONG), guangdong) == [
        ("first_entry", 2024, 200_000, "guangdong-tiers")
    ]


def test_yunnan_pays_200000_or_300000_for_a_strategic_emerging_firm() -> None:
    yunnan = shape(
        "yunnan",
        first_entry__amount_fen=200_000 * YUAN,
        first_entry__bonuses=[{"designation": "strategic_emerging", "percent": 50}],
        retention__awards=[],
    )
    assert awards(firm(2024, 2024), yunnan)[0][2] == 200_000
    assert awards(firm(2024, 2024, designations=(se("2024-05-01"),)), yunnan)[0][2] == 300_000


def test_a_city_table_names_cities_only() -> None:
    with pytest.raises(ValidationError, match="not city division codes: 140105"):
        shape("county", first_entry__by_city={"140105": 100})

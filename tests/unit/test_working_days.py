"""Working days by the official calendar, worked by hand from the State Council's notice for 2026
(国办发明电〔2025〕7号: Mid-Autumn 09-25 to 09-27 and National Day 10-01 to 10-07 off; Sunday
09-20 and Saturday 10-10 worked)."""

from __future__ import annotations

from datetime import date

import pytest

from domain.errors import InvalidInputError
from domain.working_days import is_working_day, last_working_day


@pytest.mark.parametrize(
    ("first", "days", "last"),
    [
        (date(2026, 9, 30), 5, date(2026, 10, 12)),  # 09-30, 10-08, 10-09, Sat 10-10, 10-12
        (date(2026, 9, 30), 7, date(2026, 10, 14)),
        (date(2026, 9, 18), 5, date(2026, 9, 23)),  # Sun 09-20 worked
        (date(2026, 9, 24), 5, date(2026, 10, 8)),  # Fri 09-25 off (Mid-Autumn)
        (
            date(2026, 10, 3),
            5,
            date(2026, 10, 13),
        ),  # from a holiday: 10-08, 10-09, 10-10, 10-12, 10-13
    ],
)
def test_a_notice_s_last_day(first: date, days: int, last: date) -> None:
    assert last_working_day(first, days) == last


def test_make_up_days_are_working_days_and_holidays_are_not() -> None:
    assert is_working_day(date(2026, 10, 10)) and is_working_day(date(2026, 9, 20))
    assert not is_working_day(date(2026, 10, 5)) and not is_working_day(date(2026, 10, 11))


def test_a_year_outside_the_calendar_s_data_is_refused_saying_so() -> None:
    with pytest.raises(InvalidInputError, match="outside the official calendar"):
        last_working_day(date(2099, 3, 2), 5)

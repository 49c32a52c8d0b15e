"""Working days by China's official calendar (the State Council's yearly notice, make-up working
days included), from the maintained `chinese-calendar` package: never a hand-written table."""

from __future__ import annotations

from datetime import date, timedelta

import chinese_calendar

from domain.errors import InvalidInputError


def is_working_day(day: date, field: str = "from") -> bool:
    """Whether `day` is a working day; refused (naming `field`) when the package has no data
    for its year (the State Council publishes each year's notice in the November before)."""
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        raise InvalidInputError(
            f"{day} is outside the official calendar the ledger has (chinese-calendar "
            f"{chinese_calendar.__version__}: {_years()}): the working days of {day.year} are "
            "not published in it yet; update the package once the State Council's notice is out",
            field=field,
        ) from None


def last_working_day(first: date, working_days: int) -> date:
    """The last day of a period of `working_days` working days from `first` (counted itself
    when it is a working day)."""
    if working_days < 1:
        raise InvalidInputError("must be at least 1", field="working_days")
    day, counted = first, 0
    while True:
        if is_working_day(day):
            counted += 1
            if counted == working_days:
                return day
        day += timedelta(days=1)


def _years() -> str:
    days = chinese_calendar.holidays.keys()
    return f"{min(days).year} to {max(days).year}"

"""Rotation schedules: RotationRules as RotateSecret takes them, and rotation windows (spec §6.1).

A schedule is ``AutomaticallyAfterDays``, a ``rate()`` or a ``cron()`` expression, plus an
optional window ``Duration``. Times are epoch seconds, UTC; nothing here reads a clock.

Theory of operation (AWS user guide, "Schedule expressions in Secrets Manager rotation"):

* ``AutomaticallyAfterDays N`` and ``rate(N days)``: the window is the UTC day N days after the
  last rotation, opening at midnight and by default closing at the end of that day.
* ``rate(N hours)``: windows open every N hours from midnight UTC and the grid restarts each
  day, as AWS documents for cron hour increments (UNCONFIRMED for rate); by default 1 h long.
* ``cron()``: a window opens at each match (croniter evaluates the expression); 1 h long when
  the hours field names several hours a day, else until the end of the day.
* ``Duration`` replaces the default length; a window never runs past midnight UTC nor into the
  next window.

Error texts: "You cannot specify both ..." is AWS's own (FIELD: hashicorp/terraform-provider-aws
#33329). The others come from one third-party rule set that quotes AWS, or are ours: every one
of them is UNCONFIRMED.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

from strongroom.errors import InvalidParameterException

HOUR = 3600
DAY = 24 * HOUR
MIN_INTERVAL_HOURS = 4  # "You can rotate a secret as often as every four hours."
MAX_AFTER_DAYS = 1000  # AutomaticallyAfterDays, botocore model range 1-1000
MAX_RATE_DAYS = 999  # "The maximum rotation period is 999 days."

BOTH = "You cannot specify both rotation frequency and schedule expression together."
NEITHER = "You must specify either rotation frequency or schedule expression."  # UNCONFIRMED
AFTER_DAYS_RANGE = "RotationRules.AutomaticallyAfterDays must be within 1-1000."  # UNCONFIRMED
INVALID_EXPRESSION = "Invalid schedule expression."  # UNCONFIRMED
RATE_HOURS_RANGE = "Rate in hour should be least 4 and less than 24."  # UNCONFIRMED, sic
RATE_DAYS_RANGE = "Rate in day should be greater than 0 and less than 1000."  # UNCONFIRMED
DURATION_RANGE = "Duration must be at least 1 hour, at most 24 hour."  # UNCONFIRMED, sic
DURATION_OVER_RATE = "Duration cannot be greater than Rate in hour."  # UNCONFIRMED
DURATION_PAST_DAY = "Starting hour and duration must be within a day."  # UNCONFIRMED
# Ours: no text for a cron window longer than the gap between its hours was found at all.
DURATION_OVER_CRON = "Duration cannot be greater than the interval between rotation windows."

_RATE = re.compile(r"rate\(([0-9]+) (hour|hours|day|days)\)")
_CRON = re.compile(r"cron\((.*)\)")
_DURATION = re.compile(r"([0-9]+)h")
_MONTH_NAMES = re.compile(r"JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC", re.IGNORECASE)
_WEEKDAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")  # AWS numbers them 1-7
# The wildcards AWS lists per field; croniter accepts more (R, H, W) that AWS does not.
_HOURS_CHARS = re.compile(r"[0-9,\-/*]+")
_DAY_OF_MONTH_CHARS = re.compile(r"[0-9,\-/*L]+")
# croniter looks this far for a match; AWS allows no schedule more than a year apart, but a
# 29 February schedule only matches every 4 years (UNCONFIRMED whether AWS accepts one).
_MAX_YEARS = 8
_PROBE = datetime(2000, 1, 1, tzinfo=UTC)  # validation needs a base; any fixed one will do


@dataclass(frozen=True, slots=True)
class RotationSchedule:
    after_days: int | None  # AutomaticallyAfterDays
    expression: str | None  # ScheduleExpression as given
    duration_hours: int | None  # Duration "3h" -> 3; None = default window

    def rules(self) -> dict[str, Any]:
        """RotationRules as DescribeSecret shows them: the members the caller set (spec §6.1)."""
        shown: dict[str, Any] = {}
        if self.after_days is not None:
            shown["AutomaticallyAfterDays"] = self.after_days
        if self.expression is not None:
            shown["ScheduleExpression"] = self.expression
        if self.duration_hours is not None:
            shown["Duration"] = f"{self.duration_hours}h"
        return shown

    def next_window(self, after: float, *, last_rotated: float | None) -> tuple[float, float]:
        """(start, end) of the first rotation window that starts strictly after ``after``.

        Day schedules count from ``last_rotated`` (``after`` when None); an overdue one gets the
        next UTC day. Hour and cron schedules follow their grid and ignore ``last_rotated``.
        """
        if self.expression is not None and self.expression.startswith("cron("):
            return self._cron_window(after)
        rate = _parse_rate(self.expression) if self.expression is not None else None
        if rate is not None and rate[1] == "hours":
            return self._hourly_window(after, rate[0])
        days = rate[0] if rate is not None else self.after_days
        if days is None:
            raise ValueError("a schedule needs AutomaticallyAfterDays or ScheduleExpression")
        start = _midnight(after if last_rotated is None else last_rotated) + days * DAY
        if start <= after:
            start = _midnight(after) + DAY
        return start, self._close(start, default=DAY, following=None)

    def random_time_in(self, window: tuple[float, float], rng: random.Random) -> float:
        """A uniformly random moment in ``[start, end)``: when the scheduler starts the rotation."""
        start, end = window
        if end <= start:
            return start
        return min(start + rng.random() * (end - start), math.nextafter(end, start))

    def _hourly_window(self, after: float, every: int) -> tuple[float, float]:
        day = _midnight(after)
        start = day + (math.floor((after - day) / (every * HOUR)) + 1) * every * HOUR
        start = min(start, day + DAY)  # past the day's last slot: midnight opens the next day
        return start, self._close(start, default=HOUR, following=start + every * HOUR)

    def _cron_window(self, after: float) -> tuple[float, float]:
        from croniter import croniter  # type: ignore[import-untyped]  # noqa: PLC0415 - see _parse_cron

        expression, hours = _parse_cron(self.expression or "")
        matches = croniter(
            expression,
            datetime.fromtimestamp(after, UTC),
            max_years_between_matches=_MAX_YEARS,
        )
        start = float(matches.get_next(datetime).timestamp())
        following = float(matches.get_next(datetime).timestamp())
        default = HOUR if len(hours) > 1 else DAY
        return start, self._close(start, default=default, following=following)

    def _close(self, start: float, *, default: int, following: float | None) -> float:
        length = default if self.duration_hours is None else self.duration_hours * HOUR
        end = min(start + length, _midnight(start) + DAY)
        return end if following is None else min(end, following)


def parse_rotation_rules(
    rules: Mapping[str, Any] | None, *, stored: RotationSchedule | None
) -> RotationSchedule | None:
    """The schedule RotateSecret sets.

    Without ``RotationRules`` the stored schedule stays (None when there is none: rotation
    without a schedule, which AWS allows). Raises InvalidParameterException with AWS's text.
    """
    if rules is None:
        return stored
    after_days = rules.get("AutomaticallyAfterDays")
    expression = rules.get("ScheduleExpression")
    duration = rules.get("Duration")
    if after_days is not None and expression is not None:
        raise InvalidParameterException(BOTH)
    if after_days is None and expression is None:
        raise InvalidParameterException(NEITHER)
    if after_days is not None and not 1 <= after_days <= MAX_AFTER_DAYS:
        raise InvalidParameterException(AFTER_DAYS_RANGE)
    hours = _window_hours(expression) if expression is not None else None
    duration_hours = _parse_duration(duration) if duration is not None else None
    if duration_hours is not None and expression is not None and hours is not None:
        rate = _parse_rate(expression)
        _check_window(duration_hours, hours, hourly=rate is not None and rate[1] == "hours")
    return RotationSchedule(after_days, expression, duration_hours)


def schedule_to_json(schedule: RotationSchedule) -> str:
    return json.dumps(schedule.rules(), sort_keys=True, separators=(",", ":"))


def schedule_from_json(text: str | None) -> RotationSchedule | None:
    """The stored form back. Not validated again: rules that were accepted stay usable."""
    if text is None:
        return None
    rules = json.loads(text)
    duration = rules.get("Duration")
    match = _DURATION.fullmatch(duration) if duration is not None else None
    return RotationSchedule(
        rules.get("AutomaticallyAfterDays"),
        rules.get("ScheduleExpression"),
        int(match.group(1)) if match else None,
    )


def _midnight(moment: float) -> float:
    """Start of the UTC day holding ``moment`` (POSIX days are exactly 86,400 s)."""
    return math.floor(moment / DAY) * DAY


def _parse_duration(duration: str) -> int:
    match = _DURATION.fullmatch(duration)
    if match is None or not 1 <= int(match.group(1)) <= 24:  # noqa: PLR2004 - hours in a day
        raise InvalidParameterException(DURATION_RANGE)
    return int(match.group(1))


def _parse_rate(expression: str) -> tuple[int, str] | None:
    """(N, "hours" | "days") of a rate() expression; None when it is no rate() at all."""
    match = _RATE.fullmatch(expression)
    if match is None:
        return None
    return int(match.group(1)), "hours" if match.group(2).startswith("hour") else "days"


def _window_hours(expression: str) -> list[int] | None:
    """Validate a ScheduleExpression. Returns the UTC hours a cron window may open at, [0] for
    rate(N days), the hours of the grid for rate(N hours)."""
    if expression.startswith("cron("):
        return _parse_cron(expression)[1]
    rate = _parse_rate(expression)
    if rate is None:
        raise InvalidParameterException(INVALID_EXPRESSION)
    value, unit = rate
    if unit == "days":
        if not 1 <= value <= MAX_RATE_DAYS:
            raise InvalidParameterException(RATE_DAYS_RANGE)
        return [0]
    if not MIN_INTERVAL_HOURS <= value < 24:  # noqa: PLR2004 - hours in a day
        raise InvalidParameterException(RATE_HOURS_RANGE)
    return list(range(0, 24, value))


def _check_window(duration: int, hours: list[int], *, hourly: bool) -> None:
    """The window may not reach into the next one nor, for cron, past midnight (AWS docs)."""
    if hourly:
        if duration > hours[1] - hours[0]:
            raise InvalidParameterException(DURATION_OVER_RATE)
        return  # the last slot of a rate() day is cut at midnight, AWS documents no error
    if hours[-1] + duration > 24:  # noqa: PLR2004 - hours in a day
        raise InvalidParameterException(DURATION_PAST_DAY)
    if any(later - earlier < duration for earlier, later in pairwise(hours)):
        raise InvalidParameterException(DURATION_OVER_CRON)


def _parse_cron(expression: str) -> tuple[str, list[int]]:
    """An AWS cron() as croniter's five fields, and the sorted hours it opens windows at.

    AWS-only rules are checked here; croniter judges the rest (ranges, steps, L, #).
    """
    match = _CRON.fullmatch(expression)
    fields = match.group(1).split(" ") if match else []
    if len(fields) != 6:  # noqa: PLR2004 - Minutes Hours Day-of-month Month Day-of-week Year
        raise InvalidParameterException(INVALID_EXPRESSION)
    minutes, hours, day_of_month, month, day_of_week, year = fields
    if (
        minutes != "0"  # windows open on the hour
        or year != "*"  # no schedule more than a year apart
        or (day_of_month == "?") == (day_of_week == "?")  # exactly one of the two is "?"
        or not _HOURS_CHARS.fullmatch(hours)
        or not _HOURS_CHARS.fullmatch(_MONTH_NAMES.sub("", month) or "0")
        or not (day_of_month == "?" or _DAY_OF_MONTH_CHARS.fullmatch(day_of_month))
    ):
        raise InvalidParameterException(INVALID_EXPRESSION)
    day_of_month = "*" if day_of_month == "?" else day_of_month
    weekdays = ",".join(_cron_weekday_item(item) for item in day_of_week.split(","))
    converted = f"0 {hours} {day_of_month} {month} {weekdays}"
    # Imported here: most secrets never use cron(), and croniter (with dateutil) costs every
    # server process a few MiB. It ships no type information.
    from croniter import CroniterError, croniter  # noqa: PLC0415

    try:
        probe = croniter(converted, _PROBE, max_years_between_matches=_MAX_YEARS)
        probe.get_next(float)  # a day that never comes (30 February) is no schedule
    except (CroniterError, ValueError) as exc:
        raise InvalidParameterException(INVALID_EXPRESSION) from exc
    expanded = probe.expanded[1]
    window_hours = list(range(24)) if expanded == ["*"] else sorted(expanded)
    if any(b - a < MIN_INTERVAL_HOURS for a, b in pairwise(window_hours)):
        raise InvalidParameterException(INVALID_EXPRESSION)
    return converted, window_hours


def _cron_weekday_item(item: str) -> str:
    """One comma item of AWS's Day-of-week field in croniter's syntax: AWS counts 1-7 from
    Sunday, croniter 0-6; AWS writes the last Friday ``6L``, croniter ``L5``."""
    if item in {"?", "*"}:
        return "*"
    if item == "L":
        return "6"  # the last day of the week: Saturday
    if item.endswith("L"):
        return "L" + _cron_weekday(item[:-1])
    if "#" in item:
        day, _, nth = item.partition("#")
        return f"{_cron_weekday(day)}#{nth}"
    span, slash, step = item.partition("/")
    first, dash, last = span.partition("-")
    converted = "*" if span == "*" else _cron_weekday(first)
    if dash:
        converted += "-" + _cron_weekday(last)
    return converted + (f"/{step}" if slash else "")


def _cron_weekday(token: str) -> str:
    if token.isdigit() and 1 <= int(token) <= len(_WEEKDAYS):
        return str(int(token) - 1)
    if token.upper() in _WEEKDAYS:
        return str(_WEEKDAYS.index(token.upper()))
    raise InvalidParameterException(INVALID_EXPRESSION)

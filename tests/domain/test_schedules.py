"""Rotation schedules (spec §6.1): ``domain.schedules``.

Tables pin which RotationRules AWS accepts and the texts it rejects the others with; example
windows pin days, rate() and cron() schedules at month and year ends; hypothesis checks that
any window of any accepted schedule lies after ``after``, inside one UTC day, before the next
window, and that the random start stays inside it.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom.domain import schedules
from strongroom.domain.schedules import (
    DAY,
    RotationSchedule,
    parse_rotation_rules,
    schedule_from_json,
    schedule_to_json,
)
from strongroom.errors import InvalidParameterException


def at(text: str) -> float:
    """Epoch seconds of an ISO time written without zone: always UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M")


def schedule(rules: Mapping[str, object]) -> RotationSchedule:
    parsed = parse_rotation_rules(rules, stored=None)
    assert parsed is not None
    return parsed


def window(rules: Mapping[str, object], after: str, last_rotated: str | None = None) -> list[str]:
    start, end = schedule(rules).next_window(
        at(after), last_rotated=None if last_rotated is None else at(last_rotated)
    )
    return [iso(start), iso(end)]


# --- what RotateSecret accepts ---------------------------------------------------------------

VALID = [
    {"AutomaticallyAfterDays": 1},
    {"AutomaticallyAfterDays": 1000},
    {"AutomaticallyAfterDays": 30, "Duration": "3h"},
    {"ScheduleExpression": "rate(4 hours)"},
    {"ScheduleExpression": "rate(4 hours)", "Duration": "4h"},
    {"ScheduleExpression": "rate(23 hours)", "Duration": "1h"},
    {"ScheduleExpression": "rate(1 day)"},
    {"ScheduleExpression": "rate(10 days)", "Duration": "24h"},
    {"ScheduleExpression": "rate(999 days)"},
    {"ScheduleExpression": "cron(0 16 1,15 * ? *)"},
    {"ScheduleExpression": "cron(0 16 1,15 * ? *)", "Duration": "8h"},
    {"ScheduleExpression": "cron(0 8/8 * * ? *)"},
    {"ScheduleExpression": "cron(0 8/8 * * ? *)", "Duration": "8h"},
    {"ScheduleExpression": "cron(0 0 ? * SUN#1 *)"},
    {"ScheduleExpression": "cron(0 0 ? * 1#1 *)"},
    {"ScheduleExpression": "cron(0 17 L * ? *)"},
    {"ScheduleExpression": "cron(0 10 ? * 6L *)"},
    {"ScheduleExpression": "cron(0 10 ? * FRIL *)"},
    {"ScheduleExpression": "cron(0 8 ? * MON-FRI *)"},
    {"ScheduleExpression": "cron(0 18 ? * SAT *)"},
    {"ScheduleExpression": "cron(0 4/12 * * ? *)"},
    {"ScheduleExpression": "cron(0 0/4 * * ? *)", "Duration": "4h"},
    {"ScheduleExpression": "cron(0 10 ? JAN,APR,JUL,OCT 2-6 *)"},
    {"ScheduleExpression": "cron(0 10 1-15 1/3 ? *)"},
    {"ScheduleExpression": "cron(0 12 29 2 ? *)"},  # only in leap years
    {"ScheduleExpression": "cron(0 10 ? * * *)"},
    {"ScheduleExpression": "cron(0 10 ? * MON/2 *)"},
]


@pytest.mark.parametrize("rules", VALID, ids=str)
def test_it_accepts_the_rules_aws_documents_and_shows_them_back_as_given(rules):
    assert schedule(rules).rules() == rules


def test_it_keeps_the_stored_schedule_when_rotate_secret_has_no_rules():
    stored = schedule({"ScheduleExpression": "rate(10 days)"})
    assert parse_rotation_rules(None, stored=stored) is stored


def test_it_allows_rotation_without_any_schedule_ever_set():
    assert parse_rotation_rules(None, stored=None) is None


def test_new_rules_replace_the_stored_ones():
    stored = schedule({"ScheduleExpression": "rate(10 days)", "Duration": "2h"})
    assert parse_rotation_rules({"AutomaticallyAfterDays": 3}, stored=stored) == RotationSchedule(
        3, None, None
    )


INVALID = [
    ({"AutomaticallyAfterDays": 1, "ScheduleExpression": "rate(1 day)"}, schedules.BOTH),
    ({}, schedules.NEITHER),
    ({"Duration": "2h"}, schedules.NEITHER),
    ({"AutomaticallyAfterDays": 0}, schedules.AFTER_DAYS_RANGE),
    ({"AutomaticallyAfterDays": 1001}, schedules.AFTER_DAYS_RANGE),
    ({"ScheduleExpression": "rate(3 hours)"}, schedules.RATE_HOURS_RANGE),
    ({"ScheduleExpression": "rate(0 hours)"}, schedules.RATE_HOURS_RANGE),
    ({"ScheduleExpression": "rate(24 hours)"}, schedules.RATE_HOURS_RANGE),
    ({"ScheduleExpression": "rate(0 days)"}, schedules.RATE_DAYS_RANGE),
    ({"ScheduleExpression": "rate(1000 days)"}, schedules.RATE_DAYS_RANGE),
    ({"ScheduleExpression": "rate(30 minutes)"}, schedules.INVALID_EXPRESSION),
    ({"ScheduleExpression": "rate(2 weeks)"}, schedules.INVALID_EXPRESSION),
    ({"ScheduleExpression": "rate(5hours)"}, schedules.INVALID_EXPRESSION),
    ({"ScheduleExpression": "rate(x days)"}, schedules.INVALID_EXPRESSION),
    ({"ScheduleExpression": "every day"}, schedules.INVALID_EXPRESSION),
    ({"ScheduleExpression": "cron(0 12 * * ?)"}, schedules.INVALID_EXPRESSION),  # 5 fields
    ({"ScheduleExpression": "cron(0 12 * * ? * *)"}, schedules.INVALID_EXPRESSION),  # 7
    ({"ScheduleExpression": "cron(0  12 * * ? *)"}, schedules.INVALID_EXPRESSION),
    ({"ScheduleExpression": "cron(30 12 * * ? *)"}, schedules.INVALID_EXPRESSION),  # minutes
    ({"ScheduleExpression": "cron(0/5 12 * * ? *)"}, schedules.INVALID_EXPRESSION),
    ({"ScheduleExpression": "cron(0 12 * * ? 2030)"}, schedules.INVALID_EXPRESSION),  # year
    ({"ScheduleExpression": "cron(0 12 ? * ? *)"}, schedules.INVALID_EXPRESSION),  # both ?
    ({"ScheduleExpression": "cron(0 12 * * * *)"}, schedules.INVALID_EXPRESSION),  # neither
    ({"ScheduleExpression": "cron(0 1 * 1/3 SUN *)"}, schedules.INVALID_EXPRESSION),
    ({"ScheduleExpression": "cron(0 ? * * ? *)"}, schedules.INVALID_EXPRESSION),
    ({"ScheduleExpression": "cron(0 * * * ? *)"}, schedules.INVALID_EXPRESSION),  # hourly
    ({"ScheduleExpression": "cron(0 */2 * * ? *)"}, schedules.INVALID_EXPRESSION),
    ({"ScheduleExpression": "cron(0 0/3 * * ? *)"}, schedules.INVALID_EXPRESSION),
    ({"ScheduleExpression": "cron(0 1,3 * * ? *)"}, schedules.INVALID_EXPRESSION),
    ({"ScheduleExpression": "cron(0 8-10 * * ? *)"}, schedules.INVALID_EXPRESSION),
    ({"ScheduleExpression": "cron(0 24 * * ? *)"}, schedules.INVALID_EXPRESSION),
    ({"ScheduleExpression": "cron(0 R * * ? *)"}, schedules.INVALID_EXPRESSION),
    ({"ScheduleExpression": "cron(0 12 32 * ? *)"}, schedules.INVALID_EXPRESSION),
    ({"ScheduleExpression": "cron(0 12 30 2 ? *)"}, schedules.INVALID_EXPRESSION),  # never
    ({"ScheduleExpression": "cron(0 12 15W * ? *)"}, schedules.INVALID_EXPRESSION),
    ({"ScheduleExpression": "cron(0 12 1 13 ? *)"}, schedules.INVALID_EXPRESSION),
    ({"ScheduleExpression": "cron(0 12 1 R ? *)"}, schedules.INVALID_EXPRESSION),
    ({"ScheduleExpression": "cron(0 12 ? * 0 *)"}, schedules.INVALID_EXPRESSION),  # AWS: 1-7
    ({"ScheduleExpression": "cron(0 12 ? * 8 *)"}, schedules.INVALID_EXPRESSION),
    ({"ScheduleExpression": "cron(0 12 ? * SUN#6 *)"}, schedules.INVALID_EXPRESSION),
    ({"ScheduleExpression": "cron(0 12 ? * *-3 *)"}, schedules.INVALID_EXPRESSION),
    ({"ScheduleExpression": "cron(0 12 ? * FUN *)"}, schedules.INVALID_EXPRESSION),
    ({"ScheduleExpression": "cron(0 12 ? * 5L#2 *)"}, schedules.INVALID_EXPRESSION),
    ({"AutomaticallyAfterDays": 1, "Duration": "0h"}, schedules.DURATION_RANGE),
    ({"ScheduleExpression": "rate(1 day)", "Duration": "25h"}, schedules.DURATION_RANGE),
    ({"ScheduleExpression": "rate(1 day)", "Duration": "3"}, schedules.DURATION_RANGE),
    ({"ScheduleExpression": "rate(4 hours)", "Duration": "5h"}, schedules.DURATION_OVER_RATE),
    ({"ScheduleExpression": "rate(12 hours)", "Duration": "13h"}, schedules.DURATION_OVER_RATE),
    ({"ScheduleExpression": "cron(0 20 * * ? *)", "Duration": "5h"}, schedules.DURATION_PAST_DAY),
    ({"ScheduleExpression": "cron(0 8/8 * * ? *)", "Duration": "9h"}, schedules.DURATION_PAST_DAY),
    (
        {"ScheduleExpression": "cron(0 4,10 * * ? *)", "Duration": "7h"},
        schedules.DURATION_OVER_CRON,
    ),
]


@pytest.mark.parametrize(("rules", "message"), INVALID, ids=str)
def test_it_rejects_rules_aws_rejects_with_its_text(rules, message):
    with pytest.raises(InvalidParameterException) as caught:
        parse_rotation_rules(rules, stored=None)
    assert caught.value.message == message


def test_the_text_for_both_members_is_the_one_aws_sends():
    # Seen from AWS itself (hashicorp/terraform-provider-aws#33329), so pinned literally.
    with pytest.raises(InvalidParameterException, match=r"^You cannot specify both rotation "):
        parse_rotation_rules(
            {"AutomaticallyAfterDays": 7, "ScheduleExpression": "rate(7 days)"}, stored=None
        )


# --- next windows: AutomaticallyAfterDays and rate(N days) -----------------------------------


def test_after_days_opens_the_whole_utc_day_n_days_after_the_last_rotation():
    rules = {"AutomaticallyAfterDays": 1}
    assert window(rules, "2024-01-31T15:00", "2024-01-31T15:00") == [
        "2024-02-01T00:00",
        "2024-02-02T00:00",
    ]


def test_after_days_counts_across_a_leap_february_and_a_year_end():
    assert window({"AutomaticallyAfterDays": 30}, "2024-01-31T23:59", "2024-01-31T23:59") == [
        "2024-03-01T00:00",
        "2024-03-02T00:00",
    ]
    assert window({"AutomaticallyAfterDays": 2}, "2023-12-30T06:00", "2023-12-30T06:00") == [
        "2024-01-01T00:00",
        "2024-01-02T00:00",
    ]


def test_after_days_counts_from_after_when_never_rotated():
    assert window({"AutomaticallyAfterDays": 7}, "2024-02-25T10:00") == [
        "2024-03-03T00:00",
        "2024-03-04T00:00",
    ]


def test_an_overdue_day_schedule_gets_the_next_utc_day():
    assert window({"AutomaticallyAfterDays": 7}, "2024-05-10T10:00", "2024-01-01T00:00") == [
        "2024-05-11T00:00",
        "2024-05-12T00:00",
    ]


def test_a_window_is_strictly_after_after_even_at_midnight():
    assert window({"AutomaticallyAfterDays": 1}, "2024-05-11T00:00", "2024-05-10T09:00") == [
        "2024-05-12T00:00",
        "2024-05-13T00:00",
    ]


def test_a_duration_shortens_a_day_window_from_midnight():
    rules = {"ScheduleExpression": "rate(10 days)", "Duration": "3h"}
    assert window(rules, "2024-02-25T10:00", "2024-02-25T10:00") == [
        "2024-03-06T00:00",
        "2024-03-06T03:00",
    ]
    assert window({"AutomaticallyAfterDays": 1, "Duration": "2h"}, "2024-01-01T05:00") == [
        "2024-01-02T00:00",
        "2024-01-02T02:00",
    ]


# --- rate(N hours) ---------------------------------------------------------------------------


def test_an_hourly_rate_opens_one_hour_windows_on_a_grid_from_midnight():
    rules = {"ScheduleExpression": "rate(4 hours)"}
    assert window(rules, "2024-01-31T05:30") == ["2024-01-31T08:00", "2024-01-31T09:00"]
    assert window(rules, "2024-01-31T08:00") == ["2024-01-31T12:00", "2024-01-31T13:00"]
    assert window(rules, "2024-12-31T21:00") == ["2025-01-01T00:00", "2025-01-01T01:00"]


def test_an_hourly_grid_restarts_at_midnight_and_a_window_stops_there():
    rules = {"ScheduleExpression": "rate(5 hours)", "Duration": "5h"}
    assert window(rules, "2024-02-29T16:00") == ["2024-02-29T20:00", "2024-03-01T00:00"]
    assert window(rules, "2024-02-29T21:00") == ["2024-03-01T00:00", "2024-03-01T05:00"]


# --- cron() ----------------------------------------------------------------------------------


def test_a_daily_cron_window_lasts_until_the_end_of_the_utc_day():
    rules = {"ScheduleExpression": "cron(0 16 1,15 * ? *)"}
    assert window(rules, "2024-01-31T12:00") == ["2024-02-01T16:00", "2024-02-02T00:00"]
    assert window(rules, "2024-02-01T16:00") == ["2024-02-15T16:00", "2024-02-16T00:00"]
    with_duration = {**rules, "Duration": "2h"}
    assert window(with_duration, "2024-12-20T00:00") == ["2025-01-01T16:00", "2025-01-01T18:00"]


def test_an_hourly_cron_window_lasts_one_hour_and_the_increment_restarts_each_day():
    rules = {"ScheduleExpression": "cron(0 8/8 * * ? *)"}
    assert window(rules, "2024-01-31T09:00") == ["2024-01-31T16:00", "2024-01-31T17:00"]
    assert window(rules, "2024-01-31T16:00") == ["2024-02-01T08:00", "2024-02-01T09:00"]
    longer = {**rules, "Duration": "8h"}
    assert window(longer, "2024-01-31T09:00") == ["2024-01-31T16:00", "2024-02-01T00:00"]


def test_sun_hash_one_is_the_first_sunday_of_the_month():
    rules = {"ScheduleExpression": "cron(0 0 ? * SUN#1 *)"}
    assert window(rules, "2024-01-31T12:00") == ["2024-02-04T00:00", "2024-02-05T00:00"]
    assert window(rules, "2024-02-04T00:00") == ["2024-03-03T00:00", "2024-03-04T00:00"]
    numbered = {"ScheduleExpression": "cron(0 0 ? * 1#1 *)"}  # AWS counts from 1 = Sunday
    assert window(numbered, "2024-01-31T12:00") == ["2024-02-04T00:00", "2024-02-05T00:00"]


def test_l_in_day_of_month_is_the_last_day_of_each_month():
    rules = {"ScheduleExpression": "cron(0 17 L * ? *)"}
    assert window(rules, "2024-02-01T00:00") == ["2024-02-29T17:00", "2024-03-01T00:00"]
    assert window(rules, "2023-02-01T00:00") == ["2023-02-28T17:00", "2023-03-01T00:00"]
    assert window(rules, "2024-04-30T17:00") == ["2024-05-31T17:00", "2024-06-01T00:00"]


def test_a_number_before_l_in_day_of_week_is_the_last_such_weekday_aws_numbering():
    # 6L: AWS day 6 = Friday; the last Friday of January 2024 is the 26th.
    assert window({"ScheduleExpression": "cron(0 10 ? * 6L *)"}, "2024-01-01T00:00") == [
        "2024-01-26T10:00",
        "2024-01-27T00:00",
    ]
    assert window({"ScheduleExpression": "cron(0 10 ? * FRIL *)"}, "2024-01-27T00:00") == [
        "2024-02-23T10:00",
        "2024-02-24T00:00",
    ]


@pytest.mark.parametrize(
    ("day_of_week", "expected"),
    [
        ("1", "2024-02-04T09:00"),  # Sunday
        ("2", "2024-02-05T09:00"),  # Monday
        ("7", "2024-02-03T09:00"),  # Saturday
        ("WED", "2024-02-07T09:00"),  # 31 January itself has passed 09:00
        ("MON-FRI", "2024-02-01T09:00"),
        ("1,7", "2024-02-03T09:00"),
        ("L", "2024-02-03T09:00"),  # last day of the week: Saturday
        ("*", "2024-02-01T09:00"),
        ("MON/2", "2024-02-02T09:00"),  # Monday, Wednesday, Friday
        ("1/3", "2024-02-03T09:00"),  # Sunday, Wednesday, Saturday
    ],
)
def test_day_of_week_uses_aws_numbering_from_sunday(day_of_week, expected):
    rules = {"ScheduleExpression": f"cron(0 9 ? * {day_of_week} *)"}
    assert window(rules, "2024-01-31T10:00")[0] == expected  # a Wednesday


def test_a_leap_day_cron_waits_for_the_next_leap_year():
    rules = {"ScheduleExpression": "cron(0 12 29 2 ? *)"}
    assert window(rules, "2024-03-01T00:00") == ["2028-02-29T12:00", "2028-03-01T00:00"]


def test_a_schedule_without_days_or_expression_has_no_window():
    with pytest.raises(ValueError, match="AutomaticallyAfterDays or ScheduleExpression"):
        RotationSchedule(None, None, 3).next_window(0.0, last_rotated=None)


# --- stored form -----------------------------------------------------------------------------


@pytest.mark.parametrize("rules", VALID, ids=str)
def test_the_stored_form_round_trips(rules):
    parsed = schedule(rules)
    assert schedule_from_json(schedule_to_json(parsed)) == parsed


def test_nothing_stored_is_no_schedule():
    assert schedule_from_json(None) is None


def test_the_stored_form_is_the_rules_as_json():
    stored = schedule_to_json(schedule({"ScheduleExpression": "rate(4 hours)", "Duration": "2h"}))
    assert stored == '{"Duration":"2h","ScheduleExpression":"rate(4 hours)"}'


# --- random start ----------------------------------------------------------------------------


def test_the_random_start_spreads_over_the_window():
    rules = schedule({"AutomaticallyAfterDays": 1})
    start, end = at("2024-01-01T00:00"), at("2024-01-02T00:00")
    rng = random.Random(7)  # noqa: S311 - reproducible spread, not a secret
    times = [rules.random_time_in((start, end), rng) for _ in range(500)]
    assert all(start <= t < end for t in times)
    assert min(times) < start + DAY / 10
    assert max(times) > end - DAY / 10


def test_the_random_start_of_an_empty_window_is_its_start():
    rules = schedule({"AutomaticallyAfterDays": 1})
    assert rules.random_time_in((100.0, 100.0), random.Random())  # noqa: S311 == 100.0


# --- properties of every window --------------------------------------------------------------

YEARS_2000_TO_2100 = st.floats(min_value=at("2000-01-01T00:00"), max_value=at("2100-01-01T00:00"))


@given(
    rules=st.sampled_from(VALID),
    after=YEARS_2000_TO_2100,
    since=st.none() | st.floats(min_value=0, max_value=1200 * DAY),
    seed=st.integers(),
)
def test_every_window_follows_after_and_stays_in_one_utc_day(rules, after, since, seed):
    parsed = schedule(rules)
    last_rotated = None if since is None else after - since
    start, end = parsed.next_window(after, last_rotated=last_rotated)
    assert start > after
    assert end > start
    assert end <= (start // DAY + 1) * DAY  # never into the next UTC day
    assert start % 3600 == 0  # windows open on the hour
    rng = random.Random(seed)  # noqa: S311 - reproducible draw, not a secret
    moment = parsed.random_time_in((start, end), rng)
    assert start <= moment < end


@given(rules=st.sampled_from(VALID), after=YEARS_2000_TO_2100)
def test_a_window_never_reaches_into_the_next_one(rules, after):
    parsed = schedule(rules)
    start, end = parsed.next_window(after, last_rotated=None)
    following, _ = parsed.next_window(start, last_rotated=start)
    assert following >= end

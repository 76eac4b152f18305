"""When the next rotation of a secret is due: NextRotationDate and the scheduler's start time."""

from __future__ import annotations

import random

from strongroom.domain.schedules import RotationSchedule, schedule_from_json
from strongroom.storage.base import SecretRow, Transaction

_rng = random.SystemRandom()


def next_rotation(
    schedule: RotationSchedule | None, now: float, *, last_rotated: float
) -> dict[str, float | None]:
    """NextRotationDate (the window's start, as AWS shows it) and when the scheduler starts
    the rotation (a random time inside the window, as AWS does)."""
    if schedule is None:
        return {"next_rotation_at": None, "rotation_due_at": None}
    window = schedule.next_window(now, last_rotated=last_rotated)
    return {"next_rotation_at": window[0], "rotation_due_at": schedule.random_time_in(window, _rng)}


def reschedule_after_manual_change(tx: Transaction, secret: SecretRow, now: float) -> None:
    """A new AWSCURRENT value stored by hand counts as a rotation for AutomaticallyAfterDays
    (spec §6.1)."""
    if not secret.rotation_enabled:
        return
    schedule = schedule_from_json(secret.rotation_rules)
    if schedule is not None and schedule.after_days is not None:
        tx.update_secret(secret.pk, **next_rotation(schedule, now, last_rotated=now))

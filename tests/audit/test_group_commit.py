"""GroupCommitter on a real SQLite store: batches, and what a stopping server answers."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path

import pytest

from strongroom.audit.trail import AuditUnavailable, Gathering, GroupCommitter
from strongroom.storage import migrate
from strongroom.storage.base import AuditEventRow, AuditQuery
from strongroom.storage.sql import SqlStore


def row() -> AuditEventRow:
    event_id = str(uuid.uuid4())
    return AuditEventRow(
        event_id=event_id,
        event_time=time.time(),
        event_source="secretsmanager.amazonaws.com",
        event_name="GetSecretValue",
        user_name="root",
        access_key_id="AKIAEXAMPLE",
        resource_name="app/db",
        read_only=True,
        record=json.dumps({"eventID": event_id}),
    )


@pytest.fixture
def store(tmp_path: Path) -> SqlStore:
    sql_store = SqlStore.from_url(f"sqlite:///{tmp_path / 'audit.db'}")
    migrate.upgrade(sql_store.engine)
    return sql_store


def test_concurrent_records_share_transactions_and_all_land(store: SqlStore) -> None:
    committer = GroupCommitter(store)

    async def many() -> None:
        await asyncio.gather(*(committer.commit(row) for _ in range(200)))

    asyncio.run(many())
    committer.close()
    with store.read() as tx:
        assert len(tx.audit_events(AuditQuery(limit=1000))) == 200
    assert 1 <= committer.batches < 200  # the first alone, the rest gathered behind it


def test_a_record_offered_after_close_fails_at_once(store: SqlStore) -> None:
    committer = GroupCommitter(store)
    asyncio.run(committer.commit(row))
    committer.close()
    with pytest.raises(AuditUnavailable):
        asyncio.run(asyncio.wait_for(committer.commit(row), timeout=5))
    with store.read() as tx:
        assert len(tx.audit_events(AuditQuery(limit=10))) == 1


def test_a_record_waits_for_the_calls_under_way_to_share_its_transaction(
    store: SqlStore,
) -> None:
    # Four calls under way, none of them in a hurry: their records share one transaction,
    # which leaves as soon as the fourth waits (not after the 30 s bound).
    committer = GroupCommitter(store, Gathering(30.0))
    committer.gathering.calls_in_flight = 4

    async def four() -> None:
        async def one(delay: float) -> None:
            await asyncio.sleep(delay)
            await committer.commit(row)

        await asyncio.wait_for(asyncio.gather(*(one(n * 0.05) for n in range(4))), timeout=10)

    asyncio.run(four())
    assert committer.batches == 1
    committer.close()


def test_a_record_that_cannot_be_rendered_fails_its_call_alone(store: SqlStore) -> None:
    committer = GroupCommitter(store)

    def broken() -> AuditEventRow:
        raise ValueError("not JSON serializable")

    async def together() -> list[BaseException | None]:
        return await asyncio.gather(
            *map(committer.commit, [row, broken, row]), return_exceptions=True
        )

    first, failed, last = asyncio.run(together())
    committer.close()
    assert isinstance(failed, ValueError)  # the front end answers this call with an error
    assert (first, last) == (None, None)
    with store.read() as tx:
        assert len(tx.audit_events(AuditQuery(limit=10))) == 2

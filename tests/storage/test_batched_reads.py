"""GetSecretValue's staged reads on PostgreSQL, batched across the calls the event loop runs
(``storage.batched_reads``): each call gets its own answer, the calls share statements, and
a failed statement fails each of its calls instead of hanging them."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy.util import greenlet_spawn
from tests.storage.test_contract import ACCOUNT, REGION, T0, arn, new_secret

from strongroom.storage.base import SecretRow, VersionRow
from strongroom.storage.batched_reads import StagedLookups
from strongroom.storage.sql import SqlStore

SECRETS = 12


def _seed(store: SqlStore) -> None:
    """Secrets s0..s11: AWSCURRENT on every one, its value naming its secret; AWSPREVIOUS
    and a label of its own on an older version of the even ones."""
    with store.write() as tx:
        for n in range(SECRETS):
            row = new_secret(tx, f"s{n}")
            current = tx.insert_version(row.pk, f"s{n}-current".ljust(32, "x"), T0, b"c%d" % n, "k")
            labels = {current.pk: ["AWSCURRENT"]}
            if n % 2 == 0:
                older = tx.insert_version(row.pk, f"s{n}-older".ljust(32, "x"), T0 - 1, b"o", "k")
                labels[older.pk] = ["AWSPREVIOUS", f"mine-{n}"]
            tx.set_labels(row.pk, labels)


def _lookups() -> list[tuple[str, str, str]]:
    wanted = []
    for n in range(SECRETS):
        wanted.append(("name", f"s{n}", "AWSCURRENT"))
        wanted.append(("arn", arn(f"s{n}"), "AWSPREVIOUS"))
    wanted += [("name", "missing", "AWSCURRENT"), ("arn", arn("missing"), "AWSCURRENT")]
    wanted += [("name", "s1", "no-such-label"), ("name", "s\x00nul", "AWSCURRENT")]
    return wanted


def _read(store: SqlStore, kind: str, key: str, stage: str) -> Any:
    with store.read() as tx:
        if kind == "name":
            found = tx.staged_by_name(ACCOUNT, REGION, key, stage)
        else:
            found = tx.staged_by_arn(key, stage)
    return _comparable(found)


def _comparable(found: tuple[SecretRow, VersionRow | None] | None) -> Any:
    if found is None:
        return None
    secret, version = found
    if version is None:
        return secret, None
    return secret, (version.version_id, version.sealed, sorted(version.stages))


async def _on_the_loop(store: SqlStore, wanted: list[tuple[str, str, str]]) -> list[Any]:
    return await asyncio.gather(*(greenlet_spawn(_read, store, *lookup) for lookup in wanted))


def test_concurrent_staged_reads_share_statements_and_each_gets_its_own_answer(
    store: SqlStore, backend: str
) -> None:
    assert store.awaiting_reads == (backend == "postgres")  # SQLite reads on the loop as is
    _seed(store)
    wanted = _lookups()
    expected = [_read(store, *lookup) for lookup in wanted]  # one at a time, in this thread
    assert expected[0][1][1] == b"c0"
    assert expected[1][1][2] == ["AWSPREVIOUS", "mine-0"]
    assert expected[3][1] is None  # s1 has no AWSPREVIOUS
    assert expected[-4:] == [None, None, (expected[2][0], None), None]

    if backend == "sqlite":
        assert asyncio.run(_on_the_loop(store, wanted)) == expected
        return
    lookups = store._staged_lookups()  # this thread's, to count statements
    sent = lookups.statements
    assert asyncio.run(_on_the_loop(store, wanted)) == expected
    statements = lookups.statements - sent
    # The NUL name needs no statement; the rest share few: far fewer than one each.
    assert 1 <= statements <= (len(wanted) - 1) // 4
    # And again, on another loop of the same thread (tests run server after server).
    assert asyncio.run(_on_the_loop(store, wanted)) == expected


def test_a_read_after_a_write_sees_it(store: SqlStore) -> None:
    _seed(store)

    async def write_then_read() -> Any:
        await greenlet_spawn(_read, store, "name", "s3", "AWSCURRENT")
        with store.write() as tx:
            secret = tx.secret_by_name(ACCOUNT, REGION, "s3")
            assert secret is not None
            newer = tx.insert_version(secret.pk, "s3-newer".ljust(32, "x"), T0 + 1, b"new", "k")
            tx.set_labels(secret.pk, {newer.pk: ["AWSCURRENT"]})
        return await greenlet_spawn(_read, store, "name", "s3", "AWSCURRENT")

    _, (version_id, sealed, stages) = asyncio.run(write_then_read())
    assert (version_id.rstrip("x"), sealed, stages) == ("s3-newer", b"new", ["AWSCURRENT"])


def test_a_failed_statement_fails_each_of_its_calls() -> None:
    def refuse(kind: str, values: Any) -> list[Any]:
        raise ConnectionError(f"no database for {len(values)} {kind} lookups")

    lookups = StagedLookups(refuse)

    async def main() -> list[Any]:
        calls = [greenlet_spawn(lookups.rows, "name", ("a", "r", f"n{i}", "s")) for i in range(5)]
        return await asyncio.gather(*calls, return_exceptions=True)

    outcomes = asyncio.run(main())
    assert all(isinstance(o, ConnectionError) for o in outcomes)
    # All five asked in the same turn of the loop, before the statement left: one for all.
    assert [str(o) for o in outcomes] == ["no database for 5 name lookups"] * 5
    assert lookups.statements == 1


def test_the_lookups_connection_plans_its_statement_once(store: SqlStore, backend: str) -> None:
    """Else PostgreSQL plans the batched lookup on every run (the array's length unknown to
    the generic plan), which cost several times the lookup itself."""
    if backend == "sqlite":
        pytest.skip("SQLite keeps its own statement cache; there is no such setting")

    def setting() -> str:
        pooled = store._lookup_engine.raw_connection()  # type: ignore[union-attr]
        try:
            cursor = pooled.dbapi_connection.cursor()
            cursor.execute("SHOW plan_cache_mode")
            value: str = cursor.fetchall()[0][0]
            return value
        finally:
            pooled.close()

    assert asyncio.run(greenlet_spawn(setting)) == "force_generic_plan"

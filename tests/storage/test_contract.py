"""The storage contract (``storage.base``), held against every backend.

Each test speaks only the ``Store`` / ``Transaction`` protocol, except where it checks what a
method left behind in the tables (a delete that forgets the search words is invisible through
the protocol until a ListSecrets filter finds a ghost); those checks read the tables directly.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import pytest
import sqlalchemy as sa

from strongroom.domain.search import SecretFacts, indexed_words
from strongroom.storage import schema
from strongroom.storage.base import (
    AccessKeyRow,
    AlreadyExists,
    AuditEventRow,
    ConstraintViolation,
    ListQuery,
    SecretRow,
    SortBy,
    Transaction,
)
from strongroom.storage.sql import SqlStore

ACCOUNT = "111122223333"
OTHER_ACCOUNT = "444455556666"
REGION = "eu-west-1"
OTHER_REGION = "eu-central-1"
T0 = 1_700_000_000.0


def arn(name: str, region: str = REGION, account: str = ACCOUNT) -> str:
    return f"arn:aws:secretsmanager:{region}:{account}:secret:{name}-AbC123"


def new_secret(
    tx: Transaction,
    name: str,
    *,
    region: str = REGION,
    account: str = ACCOUNT,
    created_at: float = T0,
    **values: Any,
) -> SecretRow:
    values.setdefault("last_changed_at", created_at)
    return tx.insert_secret(
        SecretRow(
            pk=0,
            account_id=account,
            region=region,
            name=name,
            arn=values.pop("arn", arn(name, region, account)),
            created_at=created_at,
            **values,
        )
    )


def rows_of(store: SqlStore, table: sa.Table, secret_pk: int) -> int:
    with store.engine.connect() as conn:
        count = sa.select(sa.func.count()).select_from(table).where(table.c.secret_pk == secret_pk)
        return int(conn.scalar(count) or 0)


def names(rows: Sequence[SecretRow]) -> list[str]:
    return [row.name for row in rows]


def access_key(key_id: str, blob: bytes = b"sealed") -> AccessKeyRow:
    return AccessKeyRow(
        access_key_id=key_id,
        account_id=ACCOUNT,
        principal_arn=f"arn:aws:iam::{ACCOUNT}:user/alice",
        sealed_secret=blob,
        master_key_id="mk-1",
        created_at=T0,
        user_name="alice",
    )


# --- secrets ------------------------------------------------------------------------------


def test_it_finds_an_inserted_secret_by_name_and_by_arn(store):
    with store.write() as tx:
        inserted = new_secret(tx, "app/db", description="the database", kms_key_id="k1")
    assert inserted.pk > 0

    with store.read() as tx:
        by_name = tx.secret_by_name(ACCOUNT, REGION, "app/db")
        by_arn = tx.secret_by_arn(arn("app/db"))

    assert by_name == inserted
    assert by_arn == inserted
    assert by_name is not None
    assert by_name.description == "the database"
    assert by_name.last_accessed_at == 0.0
    assert by_name.tags_ever_set is False


def test_it_finds_nothing_for_unknown_names_and_arns(store):
    with store.write() as tx:
        new_secret(tx, "app/db")
    with store.read() as tx:
        assert tx.secret_by_name(ACCOUNT, REGION, "app/dbx") is None
        assert tx.secret_by_name(ACCOUNT, REGION, "APP/DB") is None  # names are case-sensitive
        assert tx.secret_by_name(ACCOUNT, OTHER_REGION, "app/db") is None
        assert tx.secret_by_name(OTHER_ACCOUNT, REGION, "app/db") is None
        assert tx.secret_by_arn(arn("app/db", OTHER_REGION)) is None


def test_it_refuses_a_second_secret_with_the_same_name_in_one_region(store):
    with store.write() as tx:
        new_secret(tx, "app/db")
    with pytest.raises(AlreadyExists), store.write() as tx:
        new_secret(tx, "app/db", arn=arn("app/db").replace("AbC123", "XyZ789"))


def test_it_allows_the_same_name_in_other_regions_and_accounts(store):
    with store.write() as tx:
        pks = {
            new_secret(tx, "app/db").pk,
            new_secret(tx, "app/db", region=OTHER_REGION).pk,
            new_secret(tx, "app/db", account=OTHER_ACCOUNT).pk,
        }
    assert len(pks) == 3


def test_it_refuses_a_second_secret_with_the_same_arn(store):
    with store.write() as tx:
        new_secret(tx, "app/db")
    with pytest.raises(AlreadyExists), store.write() as tx:
        new_secret(tx, "app/other", arn=arn("app/db"))


def test_a_transaction_goes_on_after_already_exists(store):
    # Operations catch AlreadyExists and carry on (e.g. a concurrent create): the failed
    # statement must not poison the transaction, which on PostgreSQL needs a savepoint.
    with store.write() as tx:
        first = new_secret(tx, "app/db")
        with pytest.raises(AlreadyExists):
            new_secret(tx, "app/db", arn=arn("app/db").replace("AbC123", "XyZ789"))
        new_secret(tx, "app/other")
    with store.read() as tx:
        assert tx.secret_by_name(ACCOUNT, REGION, "app/db") == first
        assert tx.secret_by_name(ACCOUNT, REGION, "app/other") is not None


class Boom(Exception):
    pass


def test_an_exception_rolls_back_everything_the_transaction_did(store):
    with store.write() as tx:
        kept = new_secret(tx, "kept")

    def write_then_fail() -> None:
        with store.write() as tx:
            doomed = new_secret(tx, "doomed")
            version = tx.insert_version(doomed.pk, "v" * 32, T0, b"blob", "mk-1")
            tx.set_labels(doomed.pk, {version.pk: ["AWSCURRENT"]})
            tx.set_tags(doomed.pk, [("team", "core")])
            tx.update_secret(kept.pk, description="changed")
            tx.set_meta("rolled", "back")
            raise Boom

    with pytest.raises(Boom):
        write_then_fail()

    with store.read() as tx:
        assert tx.secret_by_name(ACCOUNT, REGION, "doomed") is None
        assert tx.secret_by_name(ACCOUNT, REGION, "kept") == kept
        assert tx.get_meta("rolled") is None
    with store.engine.connect() as conn:
        for table in (schema.versions, schema.stages, schema.tags):
            assert conn.scalar(sa.select(sa.func.count()).select_from(table)) == 0


def test_update_secret_changes_only_the_given_fields(store):
    with store.write() as tx:
        row = new_secret(tx, "app/db", description="old", kms_key_id="k1")
    with store.write() as tx:
        tx.update_secret(row.pk, description="new", deletion_date=T0 + 5, tags_ever_set=True)
    with store.read() as tx:
        found = tx.secret_by_name(ACCOUNT, REGION, "app/db")
    assert found is not None
    assert (found.description, found.deletion_date, found.tags_ever_set) == ("new", T0 + 5, True)
    assert (found.kms_key_id, found.created_at, found.name) == ("k1", T0, "app/db")


def test_delete_secret_removes_its_versions_labels_tags_and_words(store):
    with store.write() as tx:
        doomed = new_secret(tx, "doomed", description="going away")
        kept = new_secret(tx, "kept", description="staying")
        for row in (doomed, kept):
            version = tx.insert_version(row.pk, f"{row.name}-v1".ljust(32, "x"), T0, b"b", "mk")
            tx.set_labels(row.pk, {version.pk: ["AWSCURRENT", "mine"]})
            tx.set_tags(row.pk, [("team", "core"), ("env", "prod")])
            facts = SecretFacts(row.name, row.description, tx.tags(row.pk), None, None)
            tx.set_words(row.pk, indexed_words(facts))

    with store.write() as tx:
        tx.delete_secret(doomed.pk)

    with store.read() as tx:
        assert tx.secret_by_name(ACCOUNT, REGION, "doomed") is None
        assert tx.secret_by_arn(doomed.arn) is None
        assert tx.versions(doomed.pk) == []
    for table in (schema.versions, schema.stages, schema.tags, schema.words):
        assert rows_of(store, table, doomed.pk) == 0, table.name
        assert rows_of(store, table, kept.pk) > 0, table.name


def test_a_deleted_name_can_be_used_again(store):
    with store.write() as tx:
        old = new_secret(tx, "app/db")
        version = tx.insert_version(old.pk, vid(1), T0, b"old", "mk")
        tx.set_labels(old.pk, {version.pk: ["AWSCURRENT"]})
        tx.set_tags(old.pk, [("team", "core")])
    with store.write() as tx:
        tx.delete_secret(old.pk)
        new = new_secret(tx, "app/db", arn=arn("app/db").replace("AbC123", "New456"))
    with store.read() as tx:
        assert tx.secret_by_name(ACCOUNT, REGION, "app/db") == new
        assert tx.secret_by_arn(old.arn) is None
        # Nothing of the old secret leaks into the new one (SQLite may even reuse the pk).
        assert tx.versions(new.pk) == []
        assert tx.version_by_stage(new.pk, "AWSCURRENT") is None
        assert tx.tags(new.pk) == []


def test_lock_secret_holds_off_a_second_writer_until_the_first_commits(store):
    # Two writers of one secret must not both read the old state (storage.base, theory of
    # operation): the second one's lock waits for the first one's commit.
    with store.write() as tx:
        row = new_secret(tx, "app/db", description="0")
    first_locked, second_done = threading.Event(), threading.Event()
    seen: list[str | None] = []

    def second_writer() -> None:
        first_locked.wait(5)
        with store.write() as tx:
            tx.lock_secret(row.pk)
            found = tx.secret_by_arn(row.arn)
            assert found is not None
            seen.append(found.description)
            tx.update_secret(row.pk, description=f"{found.description}+2")
        second_done.set()

    thread = threading.Thread(target=second_writer)
    thread.start()
    with store.write() as tx:
        tx.lock_secret(row.pk)
        tx.update_secret(row.pk, description="1")
        first_locked.set()
        # The second writer is now blocked; give it a moment to (wrongly) get through.
        finished_early = second_done.wait(0.3)
    thread.join(10)

    assert not finished_early
    assert seen == ["1"]
    with store.read() as tx:
        final = tx.secret_by_arn(row.arn)
    assert final is not None
    assert final.description == "1+2"


# --- versions and labels ------------------------------------------------------------------


def vid(n: int) -> str:
    return f"{n:08d}-0000-4000-8000-000000000000"


def test_it_returns_versions_oldest_first_with_their_stages(store):
    with store.write() as tx:
        row = new_secret(tx, "app/db")
        newer = tx.insert_version(row.pk, vid(2), T0 + 10, b"two", "mk")
        older = tx.insert_version(row.pk, vid(1), T0, b"one", "mk")
        pending = tx.insert_version(row.pk, vid(3), T0 + 20, None, None)
        tx.set_labels(row.pk, {newer.pk: ["AWSCURRENT"], older.pk: ["AWSPREVIOUS", "old"]})

    with store.read() as tx:
        versions = tx.versions(row.pk)

    assert [v.version_id for v in versions] == [vid(1), vid(2), vid(3)]
    assert [sorted(v.stages) for v in versions] == [["AWSPREVIOUS", "old"], ["AWSCURRENT"], []]
    assert [v.sealed for v in versions] == [b"one", b"two", None]
    assert [v.pk for v in versions] == [older.pk, newer.pk, pending.pk]


def test_it_finds_a_version_by_id_and_by_stage(store):
    with store.write() as tx:
        row = new_secret(tx, "app/db")
        other = new_secret(tx, "app/other")
        version = tx.insert_version(row.pk, vid(1), T0, b"one", "mk")
        tx.set_labels(row.pk, {version.pk: ["AWSCURRENT", "blue"]})

    with store.read() as tx:
        by_id = tx.version_by_id(row.pk, vid(1))
        by_stage = tx.version_by_stage(row.pk, "blue")
        assert tx.version_by_id(row.pk, vid(2)) is None
        assert tx.version_by_id(other.pk, vid(1)) is None  # version ids are per secret
        assert tx.version_by_stage(row.pk, "AWSPENDING") is None
        assert tx.version_by_stage(other.pk, "AWSCURRENT") is None

    assert by_id is not None
    assert by_stage is not None
    assert by_id.pk == by_stage.pk == version.pk
    assert sorted(by_id.stages) == sorted(by_stage.stages) == ["AWSCURRENT", "blue"]
    assert by_id.sealed == b"one"


def test_it_reads_a_secret_with_its_staged_version_in_one_call(store):
    with store.write() as tx:
        row = new_secret(tx, "app/db", description="d", rotation_enabled=True)
        other = new_secret(tx, "app/other")
        empty = new_secret(tx, "app/empty")
        old = tx.insert_version(row.pk, vid(1), T0, b"one", "mk")
        current = tx.insert_version(row.pk, vid(2), T0 + 1, b"two", "mk")
        tx.insert_version(other.pk, vid(3), T0, b"three", "mk")
        tx.set_labels(row.pk, {current.pk: ["AWSCURRENT", "blue"], old.pk: ["AWSPREVIOUS"]})
        tx.touch_accessed(row.pk, current.pk, T0 + 86_400)

    with store.read() as tx:
        by_name = tx.staged_by_name(ACCOUNT, REGION, "app/db", "AWSCURRENT")
        by_arn = tx.staged_by_arn(row.arn, "blue")
        previous = tx.staged_by_name(ACCOUNT, REGION, "app/db", "AWSPREVIOUS")
        unlabelled = tx.staged_by_name(ACCOUNT, REGION, "app/other", "AWSCURRENT")
        no_versions = tx.staged_by_arn(empty.arn, "AWSCURRENT")
        missing = tx.staged_by_name(ACCOUNT, REGION, "app/nothing", "AWSCURRENT")
        other_region = tx.staged_by_name(ACCOUNT, "ap-south-1", "app/db", "AWSCURRENT")
        secret = tx.secret_by_name(ACCOUNT, REGION, "app/db")
        version = tx.version_by_stage(row.pk, "AWSCURRENT")

    assert by_name is not None
    assert by_arn is not None
    # The same rows as the two separate lookups give, secret columns and version columns
    # kept apart though both tables have pk, created_at and last_accessed_at.
    assert by_name == by_arn == (secret, version)
    assert by_name[0].description == "d"
    assert by_name[0].rotation_enabled is True
    assert by_name[1] is not None
    assert by_name[1].version_id == vid(2)
    assert by_name[1].sealed == b"two"
    assert by_name[1].last_accessed_at == T0 + 86_400
    assert sorted(by_name[1].stages) == ["AWSCURRENT", "blue"]
    assert previous is not None
    assert previous[1] is not None
    assert (previous[1].version_id, previous[1].stages) == (vid(1), ["AWSPREVIOUS"])
    # A secret no version of which holds the stage is still found, without a version.
    assert unlabelled is not None
    assert (unlabelled[0].pk, unlabelled[1]) == (other.pk, None)
    assert no_versions is not None
    assert (no_versions[0].pk, no_versions[1]) == (empty.pk, None)
    assert missing is None
    assert other_region is None


def test_it_refuses_a_version_id_twice_in_one_secret_but_not_across_secrets(store):
    with store.write() as tx:
        row = new_secret(tx, "app/db")
        other = new_secret(tx, "app/other")
        tx.insert_version(row.pk, vid(1), T0, b"one", "mk")
        tx.insert_version(other.pk, vid(1), T0, b"one", "mk")
        with pytest.raises(AlreadyExists):
            tx.insert_version(row.pk, vid(1), T0 + 1, b"again", "mk")
    with store.read() as tx:
        assert [v.sealed for v in tx.versions(row.pk)] == [b"one"]


def test_set_labels_replaces_every_label_of_the_secret(store):
    with store.write() as tx:
        row = new_secret(tx, "app/db")
        v1 = tx.insert_version(row.pk, vid(1), T0, b"one", "mk")
        v2 = tx.insert_version(row.pk, vid(2), T0 + 1, b"two", "mk")
        tx.set_labels(row.pk, {v1.pk: ["AWSCURRENT", "x"]})
    with store.write() as tx:
        tx.set_labels(row.pk, {v1.pk: ["AWSPREVIOUS"], v2.pk: ["AWSCURRENT"]})
    with store.read() as tx:
        assert tx.labels_of([row.pk]) == {row.pk: {vid(1): ["AWSPREVIOUS"], vid(2): ["AWSCURRENT"]}}
    with store.write() as tx:
        tx.set_labels(row.pk, {})
    with store.read() as tx:
        assert tx.labels_of([row.pk]) == {row.pk: {}}
        assert len(tx.versions(row.pk)) == 2  # unlabelled versions stay


def test_a_label_is_on_at_most_one_version_of_a_secret(store):
    with store.write() as tx:
        row = new_secret(tx, "app/db")
        v1 = tx.insert_version(row.pk, vid(1), T0, b"one", "mk")
        v2 = tx.insert_version(row.pk, vid(2), T0 + 1, b"two", "mk")
        tx.set_labels(row.pk, {v1.pk: ["AWSCURRENT"]})

    # The database itself refuses it (schema.stages' primary key), whatever the caller does,
    # and says so in storage's own terms.
    with pytest.raises(ConstraintViolation), store.write() as tx:
        tx.set_labels(row.pk, {v1.pk: ["AWSCURRENT"], v2.pk: ["AWSCURRENT"]})

    with store.read() as tx:
        assert tx.labels_of([row.pk]) == {row.pk: {vid(1): ["AWSCURRENT"]}}


def test_the_same_label_may_sit_on_versions_of_different_secrets(store):
    with store.write() as tx:
        a, b = new_secret(tx, "a"), new_secret(tx, "b")
        va = tx.insert_version(a.pk, vid(1), T0, b"a", "mk")
        vb = tx.insert_version(b.pk, vid(2), T0, b"b", "mk")
        tx.set_labels(a.pk, {va.pk: ["AWSCURRENT"]})
        tx.set_labels(b.pk, {vb.pk: ["AWSCURRENT"]})
    with store.read() as tx:
        assert tx.labels_of([a.pk, b.pk]) == {
            a.pk: {vid(1): ["AWSCURRENT"]},
            b.pk: {vid(2): ["AWSCURRENT"]},
        }
        assert tx.labels_of([]) == {}


def test_delete_versions_removes_them_with_their_labels(store):
    with store.write() as tx:
        row = new_secret(tx, "app/db")
        v1 = tx.insert_version(row.pk, vid(1), T0, b"one", "mk")
        v2 = tx.insert_version(row.pk, vid(2), T0 + 1, b"two", "mk")
        tx.set_labels(row.pk, {v1.pk: ["old"], v2.pk: ["AWSCURRENT"]})
    with store.write() as tx:
        tx.delete_versions([v1.pk])
        tx.delete_versions([])
    with store.read() as tx:
        assert [v.version_id for v in tx.versions(row.pk)] == [vid(2)]
        assert tx.version_by_stage(row.pk, "old") is None
        assert tx.labels_of([row.pk]) == {row.pk: {vid(2): ["AWSCURRENT"]}}


def test_set_version_value_fills_an_empty_version(store):
    with store.write() as tx:
        row = new_secret(tx, "app/db")
        pending = tx.insert_version(row.pk, vid(1), T0, None, None)
    with store.write() as tx:
        tx.set_version_value(pending.pk, b"filled", "mk-2")
    with store.read() as tx:
        found = tx.version_by_id(row.pk, vid(1))
        assert found is not None
        assert found.sealed == b"filled"
        assert tx.version_blobs(0, 10) == [(pending.pk, row.arn, vid(1), b"filled")]


def test_touch_accessed_dates_the_secret_and_the_version(store):
    with store.write() as tx:
        row = new_secret(tx, "app/db")
        v1 = tx.insert_version(row.pk, vid(1), T0, b"one", "mk")
        v2 = tx.insert_version(row.pk, vid(2), T0, b"two", "mk")
    with store.write() as tx:
        tx.touch_accessed(row.pk, v2.pk, 1_700_006_400.0)
    with store.read() as tx:
        found = tx.secret_by_arn(row.arn)
        assert found is not None
        assert found.last_accessed_at == 1_700_006_400.0
        accessed = {v.pk: v.last_accessed_at for v in tx.versions(row.pk)}
    assert accessed == {v1.pk: 0.0, v2.pk: 1_700_006_400.0}


def test_version_blobs_pages_through_versions_with_a_value_by_pk(store):
    with store.write() as tx:
        a, b = new_secret(tx, "a"), new_secret(tx, "b")
        made = [
            tx.insert_version(a.pk, vid(1), T0, b"a1", "mk"),
            tx.insert_version(b.pk, vid(2), T0, b"b1", "mk"),
            tx.insert_version(a.pk, vid(3), T0, None, None),  # no value yet: nothing to re-wrap
            tx.insert_version(a.pk, vid(4), T0, b"a2", "mk"),
        ]
    with store.read() as tx:
        first = tx.version_blobs(0, 2)
        rest = tx.version_blobs(first[-1][0], 2)
    assert first == [(made[0].pk, a.arn, vid(1), b"a1"), (made[1].pk, b.arn, vid(2), b"b1")]
    assert rest == [(made[3].pk, a.arn, vid(4), b"a2")]


# --- tags and words -----------------------------------------------------------------------


def test_set_tags_replaces_the_tags_and_keeps_their_order(store):
    with store.write() as tx:
        row = new_secret(tx, "app/db")
        other = new_secret(tx, "app/other")
        tx.set_tags(row.pk, [("zeta", "1"), ("alpha", ""), ("Mid", "x")])
    with store.read() as tx:
        assert tx.tags(row.pk) == [("zeta", "1"), ("alpha", ""), ("Mid", "x")]
        assert tx.tags(other.pk) == []
    with store.write() as tx:
        tx.set_tags(row.pk, [("alpha", "2")])
        tx.set_tags(other.pk, [("b", "1"), ("a", "2")])
    with store.read() as tx:
        assert tx.tags_of([row.pk, other.pk]) == {
            row.pk: [("alpha", "2")],
            other.pk: [("b", "1"), ("a", "2")],
        }
        assert tx.tags_of([]) == {}
    with store.write() as tx:
        tx.set_tags(row.pk, [])
    with store.read() as tx:
        assert tx.tags(row.pk) == []


def test_set_words_replaces_the_words_and_drops_repeats(store):
    with store.write() as tx:
        row = new_secret(tx, "app/db")
        tx.set_words(row.pk, {"name": ["app", "db"], "description": ["old"]})
    with store.write() as tx:
        tx.set_words(row.pk, {"name": ["app", "db", "app"], "tag-key": ["team"]})
    with store.engine.connect() as conn:
        stored = conn.execute(
            sa.select(schema.words.c.field, schema.words.c.word).where(
                schema.words.c.secret_pk == row.pk
            )
        ).all()
    assert sorted(stored) == [("name", "app"), ("name", "db"), ("tag-key", "team")]


# --- list_secrets -------------------------------------------------------------------------


def query(**kwargs: Any) -> ListQuery:
    return ListQuery(**{"account_id": ACCOUNT, "region": REGION, "now": T0, **kwargs})


def listed(store: SqlStore, q: ListQuery) -> list[str]:
    with store.read() as tx:
        return names(tx.list_secrets(q))


def every_page(store: SqlStore, sort_by: SortBy, descending: bool, size: int) -> list[str]:
    """Walk the keyset pages as operations.listing does: cursor = last row's (value, pk)."""
    column = {
        "created-date": "created_at",
        "last-changed-date": "last_changed_at",
        "last-accessed-date": "last_accessed_at",
        "name": "name",
    }[sort_by]
    seen: list[str] = []
    after = None
    for _ in range(50):
        q = query(sort_by=sort_by, descending=descending, after=after, limit=size)
        with store.read() as tx:
            page = tx.list_secrets(q)
        seen += names(page)
        if len(page) < size:
            return seen
        after = (getattr(page[-1], column), page[-1].pk)
    pytest.fail("paging never ended")


@pytest.fixture
def seven_secrets(store) -> list[str]:
    """Seven secrets whose four sort orders all differ; some tie on last-accessed-date.

    Names sort by code point on every backend ("Bravo" before "alpha", "-" before "/"), as
    SQLite's BINARY collation does, not as a linguistic collation would.
    """
    order = ["golf", "Bravo", "echo", "alpha", "foxtrot", "delta/0", "delta-1"]
    with store.write() as tx:
        for i, name in enumerate(order):
            new_secret(
                tx,
                name,
                created_at=T0 + i,
                last_changed_at=T0 + 100 - 3 * i if i % 2 else T0 + 50 + i,
                last_accessed_at=float(86_400 * (i % 3)),
            )
        # Noise that no query below may return.
        new_secret(tx, "other-region", region=OTHER_REGION)
        new_secret(tx, "other-account", account=OTHER_ACCOUNT)
        gone = new_secret(tx, "scheduled", created_at=T0 + 3.5)
        tx.update_secret(gone.pk, deletion_date=T0 + 1000)
    return order


@pytest.mark.parametrize(
    "sort_by", ["created-date", "last-changed-date", "last-accessed-date", "name"]
)
@pytest.mark.parametrize("descending", [False, True], ids=["asc", "desc"])
def test_list_secrets_sorts_and_pages_without_skipping_or_repeating(
    store, seven_secrets, sort_by, descending
):
    with store.read() as tx:
        rows = [tx.secret_by_name(ACCOUNT, REGION, name) for name in seven_secrets]
    key = {
        "created-date": lambda r: (r.created_at, r.pk),
        "last-changed-date": lambda r: (r.last_changed_at, r.pk),
        "last-accessed-date": lambda r: (r.last_accessed_at, r.pk),
        "name": lambda r: (r.name, r.pk),
    }[sort_by]
    expected = names(sorted(rows, key=key, reverse=descending))

    assert listed(store, query(sort_by=sort_by, descending=descending)) == expected
    for size in (1, 2, 3, 7):
        assert every_page(store, sort_by, descending, size) == expected, size


def test_list_secrets_shows_scheduled_secrets_only_when_asked(store, seven_secrets):
    assert "scheduled" not in listed(store, query(now=T0))
    assert listed(store, query(include_planned_deletion=True, now=T0)) == [
        "golf", "Bravo", "echo", "alpha", "scheduled", "foxtrot", "delta/0", "delta-1"
    ]  # fmt: skip


def test_list_secrets_hides_secrets_past_their_deletion_date_even_before_the_purge(
    store, seven_secrets
):
    # "scheduled" is to go at T0 + 1000; until the worker purges it, it is gone all the same.
    just_before = listed(store, query(include_planned_deletion=True, now=T0 + 999.5))
    at_the_date = listed(store, query(include_planned_deletion=True, now=T0 + 1000))
    assert "scheduled" in just_before
    assert at_the_date == [name for name in just_before if name != "scheduled"]


def test_list_secrets_stops_at_the_limit(store, seven_secrets):
    assert listed(store, query(limit=3)) == ["golf", "Bravo", "echo"]
    assert listed(store, query(limit=3, descending=True)) == ["delta-1", "delta/0", "foxtrot"]


def test_list_secrets_returns_nothing_for_an_empty_region(store, seven_secrets):
    with store.read() as tx:
        assert tx.list_secrets(ListQuery(account_id=ACCOUNT, region="ap-south-2", now=T0)) == []


def index(tx: Transaction, row: SecretRow, tags: Sequence[tuple[str, str]] = ()) -> None:
    tx.set_tags(row.pk, tags)
    facts = SecretFacts(row.name, row.description, tags, row.primary_region, row.owning_service)
    tx.set_words(row.pk, indexed_words(facts))


def test_list_secrets_applies_filters_with_and_across_and_or_within(store):
    with store.write() as tx:
        index(tx, new_secret(tx, "prod/db", description="Main database"), [("Team", "Core")])
        index(tx, new_secret(tx, "prod/cache", description="cache"), [("team", "edge")])
        index(tx, new_secret(tx, "dev/db", description="dev database"), [("Team", "Core1")])
        index(tx, new_secret(tx, "other", region=OTHER_REGION, description="database"))

    def find(*filters: tuple[str, list[str]]) -> list[str]:
        return sorted(listed(store, query(filters=filters)))

    assert find(("name", ["prod/"])) == ["prod/cache", "prod/db"]
    assert find(("name", ["Prod/"])) == []
    assert find(("name", ["!prod/"])) == ["dev/db"]
    assert find(("description", ["DATA"])) == ["dev/db", "prod/db"]
    assert find(("description", ["base"])) == []
    assert find(("tag-key", ["Team"])) == ["dev/db", "prod/db"]
    assert find(("tag-value", ["Core"])) == ["dev/db", "prod/db"]
    assert find(("tag-value", ["core"])) == []
    assert find(("all", ["team core"])) == ["dev/db", "prod/db"]
    assert find(("all", ["+"])) == []
    assert find(("name", ["dev", "prod/c"])) == ["dev/db", "prod/cache"]
    assert find(("name", ["prod"]), ("description", ["main"])) == ["prod/db"]
    assert find(("name", ["prod", "!prod/db"])) == ["prod/cache"]
    assert find(("tag-key", ["!Team"]), ("all", ["cache"])) == ["prod/cache"]


# --- purge, access keys, meta -------------------------------------------------------------


def test_secrets_due_for_purge_are_those_whose_window_has_passed_oldest_first(store):
    with store.write() as tx:
        for name, region, deletion in [
            ("late", REGION, T0 + 30),
            ("live", REGION, None),
            ("first", OTHER_REGION, T0 + 10),
            ("exactly-now", REGION, T0 + 50),
            ("future", REGION, T0 + 51),
        ]:
            row = new_secret(tx, name, region=region)
            if deletion is not None:
                tx.update_secret(row.pk, deletion_date=deletion)

    with store.read() as tx:
        assert names(tx.secrets_due_for_purge(T0 + 50, 10)) == ["first", "late", "exactly-now"]
        assert names(tx.secrets_due_for_purge(T0 + 50, 2)) == ["first", "late"]
        assert tx.secrets_due_for_purge(T0, 10) == []


def test_it_stores_and_finds_access_keys(store):
    with store.write() as tx:
        tx.insert_access_key(access_key("AKIAALICE0000000001"))
    with store.read() as tx:
        found = tx.access_key("AKIAALICE0000000001")
        assert tx.access_key("AKIAALICE0000000002") is None
    assert found == access_key("AKIAALICE0000000001")
    assert found is not None
    assert found.status == "Active"


def test_it_refuses_an_access_key_id_twice(store):
    with store.write() as tx:
        tx.insert_access_key(access_key("AKIAALICE0000000001", b"first"))
        with pytest.raises(AlreadyExists):
            tx.insert_access_key(access_key("AKIAALICE0000000001", b"second"))
    with store.read() as tx:
        found = tx.access_key("AKIAALICE0000000001")
    assert found is not None
    assert found.sealed_secret == b"first"


def test_access_key_blobs_can_be_listed_and_replaced(store):
    with store.write() as tx:
        tx.insert_access_key(access_key("AKIAB", b"b"))
        tx.insert_access_key(access_key("AKIAA", b"a"))
    with store.write() as tx:
        assert tx.access_key_blobs() == [("AKIAA", b"a"), ("AKIAB", b"b")]
        tx.replace_access_key_blob("AKIAB", b"rewrapped", "mk-2")
    with store.read() as tx:
        found = tx.access_key("AKIAB")
        assert tx.access_key_blobs() == [("AKIAA", b"a"), ("AKIAB", b"rewrapped")]
    assert found is not None
    assert found.master_key_id == "mk-2"


def test_meta_values_can_be_set_read_and_overwritten(store):
    with store.read() as tx:
        assert tx.get_meta("account_id") is None
    with store.write() as tx:
        tx.set_meta("account_id", "123456789012")
        tx.set_meta("token_key", "k1")
    with store.write() as tx:
        tx.set_meta("token_key", "k2")
    with store.read() as tx:
        assert tx.get_meta("account_id") == "123456789012"
        assert tx.get_meta("token_key") == "k2"


def test_a_read_transaction_sees_what_committed_writes_left(store):
    with store.write() as tx:
        new_secret(tx, "one")
    with store.read() as tx:
        assert listed(store, query()) == ["one"]
        assert tx.secret_by_name(ACCOUNT, REGION, "one") is not None


@pytest.mark.parametrize("count", [1, 3, 6_000])
def test_write_at_once_inserts_many_audit_records_each_in_its_own_columns(
    store: SqlStore, count: int
) -> None:
    # 6,000 rows of 11 values pass PostgreSQL's 65,535 parameters per statement: two
    # INSERTs, which on an autocommit connection must still commit together.
    rows = [
        AuditEventRow(
            event_id=f"event-{n}",
            event_time=T0 + n,
            event_source="secretsmanager.amazonaws.com",
            event_name=f"Name{n % 7}",
            user_name=f"user-{n}",
            access_key_id=None if n % 2 else f"AKIA{n}",
            resource_name=f"app/{n}",
            read_only=bool(n % 3),
            record=f'{{"n": {n}}}',
            aws_region="eu-west-1",
        )
        for n in range(count)
    ]
    with store.write_at_once() as tx:
        tx.insert_audit_events(rows)
    with store.read() as tx:
        stored = tx.unsealed_audit_events(count + 1)
    assert len(stored) == count
    for row, original in zip(stored, rows, strict=True):
        assert (row.event_id, row.event_time, row.event_name, row.user_name) == (
            original.event_id,
            original.event_time,
            original.event_name,
            original.user_name,
        )
        assert (row.access_key_id, row.resource_name, row.read_only, row.record) == (
            original.access_key_id,
            original.resource_name,
            original.read_only,
            original.record,
        )


def _durability_setting(tx: Transaction) -> str:
    """What the connection under ``tx`` waits for at commit: SQLite's synchronous level
    (2 is FULL) or PostgreSQL's synchronous_commit."""
    db = tx.db  # type: ignore[attr-defined]  # SqlTransaction's executor
    if db.dialect.name == "sqlite":
        return str(db.execute(sa.text("PRAGMA synchronous")).scalar())
    return str(db.execute(sa.text("SHOW synchronous_commit")).scalar())


def test_a_lazy_write_commits_whole_and_later_writes_wait_for_the_disk_again(
    store: SqlStore,
) -> None:
    durable = "2" if store.engine.dialect.name == "sqlite" else "on"
    with store.write() as tx:
        assert _durability_setting(tx) == durable
    with store.write_lazily() as tx:
        assert _durability_setting(tx) != durable  # NORMAL (1) or off
        tx.set_meta("lazy", "committed")
    with store.read() as tx:
        assert tx.get_meta("lazy") == "committed"

    # A failure undoes the whole transaction, as a write's does.
    def fail_halfway() -> None:
        with store.write_lazily() as tx:
            tx.set_meta("lazy", "changed")
            tx.set_meta("other", "written")
            raise RuntimeError("the caller failed")

    with pytest.raises(RuntimeError):
        fail_halfway()
    with store.read() as tx:
        assert (tx.get_meta("lazy"), tx.get_meta("other")) == ("committed", None)

    # Every connection the pool hands out afterwards commits durably again (a few rounds:
    # enough to come back to the connections the lazy writes used).
    for _ in range(5):
        with store.write() as tx:
            assert _durability_setting(tx) == durable

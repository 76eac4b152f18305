"""Nodes making their first start on one empty PostgreSQL database at the same moment: one
migrates and writes the account's rows, the others wait or read them, and all come up with
the same account and root key."""

from __future__ import annotations

import threading
from pathlib import Path

from tests.multinode.cluster import one_cluster_at_a_time
from tests.postgres import fresh_postgres_database

from strongroom.crypto.keys import load_or_create_keyring
from strongroom.installation import Installation, open_installation
from strongroom.settings import Settings

ROOT = {
    "STRONGROOM_ROOT_ACCESS_KEY_ID": "AKIAFIRSTSTARTTEST01",
    "STRONGROOM_ROOT_SECRET_ACCESS_KEY": "first-start-secret-for-tests-only",
}
NODES = 4


def test_nodes_starting_together_on_an_empty_database_all_come_up(tmp_path: Path) -> None:
    key_file = tmp_path / "master.key"
    load_or_create_keyring(key_file)  # distributed to every node before they start
    with one_cluster_at_a_time(), fresh_postgres_database() as url:
        barrier = threading.Barrier(NODES)
        opened: list[Installation] = []
        failures: list[BaseException] = []

        def start(n: int) -> None:
            settings = Settings(
                data_dir=tmp_path / f"node{n}",
                database_url=url,
                master_key_file=key_file,
                account_id="123456789012",
            )
            barrier.wait(timeout=30)
            try:
                opened.append(open_installation(settings, dict(ROOT)))
            except BaseException as exc:  # noqa: BLE001 - reported below
                failures.append(exc)

        threads = [threading.Thread(target=start, args=(n,)) for n in range(NODES)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        try:
            assert failures == []
            assert len(opened) == NODES
            assert {i.account_id for i in opened} == {"123456789012"}
            assert len({i.token_key for i in opened}) == 1
            with opened[0].store.read() as tx:
                assert tx.access_key(ROOT["STRONGROOM_ROOT_ACCESS_KEY_ID"]) is not None
        finally:
            for installation in opened:
                installation.close()

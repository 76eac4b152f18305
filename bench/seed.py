"""Fast path for seeding many secrets: Strongroom's own CreateSecret, in-process, batched.

Seeding 100,000 secrets through the HTTP API takes far longer than the measurements
themselves (each CreateSecret is its own durable transaction, about 5-9 ms here, and they
serialise on SQLite's single writer). This script runs the very same operation code the
server runs (``SecretsManager.run``: model validation of the request, ARN, sealing, search
words, labels) but without HTTP/SigV4, and commits once per ``--batch`` secrets instead of
once per secret. The rows it writes are the rows the API writes.

bench/run.py calls it once per (size, schema) and keeps the result as a template data dir
in a cache (see ``run.py --help``), so later runs copy it in seconds.

    .venv/bin/python bench/seed.py --data-dir DIR --count 100000
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness


class BatchingStore:
    """A Store whose read() and write() all share one transaction until ``flush``."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self._manager: Any = None
        self._tx: Any = None

    @contextmanager
    def _shared(self) -> Iterator[Any]:
        if self._tx is None:
            self._manager = self.store.write()
            self._tx = self._manager.__enter__()
        yield self._tx

    def read(self) -> Any:
        return self._shared()

    def write(self) -> Any:
        return self._shared()

    def flush(self) -> None:
        if self._manager is not None:
            manager, self._manager, self._tx = self._manager, None, None
            manager.__exit__(None, None, None)

    def close(self) -> None:
        self.store.close()

    def __getattr__(self, name: str) -> Any:
        # Anything else the server's code asks of its store (its engine, ...) is the store's.
        return getattr(self.store, name)


def seed(data_dir: Path, count: int, batch: int) -> float:
    """Create secrets 0..count-1 in a new installation at ``data_dir``; returns the rate."""
    from strongroom.app import Authenticator, Caller, SecretsManager  # noqa: PLC0415
    from strongroom.domain.principal import root_principal  # noqa: PLC0415
    from strongroom.installation import open_installation  # noqa: PLC0415
    from strongroom.operations.access import RequestFacts  # noqa: PLC0415 - the server's own code
    from strongroom.settings import Settings  # noqa: PLC0415

    settings = Settings(data_dir=data_dir, account_id=harness.ACCOUNT_ID)
    environ = {
        "STRONGROOM_ROOT_ACCESS_KEY_ID": harness.ROOT_KEY_ID,
        "STRONGROOM_ROOT_SECRET_ACCESS_KEY": harness.ROOT_SECRET,
    }
    installation = open_installation(settings, environ=environ)
    store = BatchingStore(installation.store)
    installation.store = store
    try:
        handler = SecretsManager(installation, Authenticator(installation))
        caller = Caller(
            root_principal(harness.ACCOUNT_ID, harness.ROOT_KEY_ID),
            harness.REGION,
            RequestFacts(source_ip=None, secure_transport=False, time=0.0),
        )
        create = handler.model.operation("CreateSecret")
        started = time.perf_counter()
        for index in range(count):
            (operation, body) = harness.create_items(index, 1)[0]
            request = create.parse_input(json.dumps(body).encode())
            handler.run(caller, operation, request, None)  # None: seeding is not an API call
            if (index + 1) % batch == 0:
                store.flush()
            if (index + 1) % 10_000 == 0:
                rate = (index + 1) / (time.perf_counter() - started)
                print(f"  seeded {index + 1:,} of {count:,} ({rate:,.0f}/s)", flush=True)
        store.flush()
        return count / (time.perf_counter() - started)
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="a new, empty directory")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--batch", type=int, default=500, help="secrets per transaction")
    args = parser.parse_args()
    if args.data_dir.exists() and any(args.data_dir.iterdir()):
        parser.error(f"{args.data_dir} is not empty")
    rate = seed(args.data_dir, args.count, args.batch)
    print(f"seeded {args.count:,} secrets at {rate:,.0f}/s", flush=True)


if __name__ == "__main__":
    main()

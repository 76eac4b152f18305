"""``strongroom functions``: register the rotation functions RotateSecret can name, and
``strongroom rotations``: what rotations did and why one failed.

Functions live in the database, so a running server (every node) sees a change at its next
rotation, without a restart.
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from strongroom.cli.options import load_settings, setting_options
from strongroom.crypto.envelope import aad_for_function_env
from strongroom.domain.arn import partition_for_region
from strongroom.installation import Installation, open_installation
from strongroom.operations.context import lookup_secret
from strongroom.operations.rotation import function_arn
from strongroom.rotation.engine import builtin_handler
from strongroom.storage.base import AlreadyExists, FunctionRow, SecretRow, Transaction

BUILTINS = ("postgresql-single-user", "postgresql-alternating-users")
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")  # Lambda's function-name characters
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
DEFAULT_TIMEOUT = 30.0
REGION_FOR_ARNS = "us-east-1"  # shown ARNs; any region's ARN names the same function


def _open(flags: dict[str, Any]) -> Installation:
    return open_installation(load_settings(flags))


def _env(pairs: tuple[str, ...]) -> dict[str, str]:
    env: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not _ENV_NAME.fullmatch(name):
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--env")
        env[name] = value
    return env


@click.group()
def functions() -> None:
    """Rotation functions: local Lambda-style handlers, HTTP endpoints or built-ins."""


@functions.command("add")
@click.argument("name")
@click.option("--handler", help="PATH/TO/file.py:lambda_handler, run in its own process")
@click.option("--url", help="an HTTP endpoint: the event is POSTed as JSON; 2xx = success")
@click.option("--builtin", type=click.Choice(BUILTINS), help="one of Strongroom's own rotators")
@click.option("--env", "env_pairs", multiple=True, help="KEY=VALUE for the function (repeat)")
@click.option("--timeout", type=float, default=DEFAULT_TIMEOUT, show_default=True, help="seconds")
@click.option("--python", "interpreter", help="interpreter for a local function")
@setting_options("data_dir", "database_url", "master_key_file")
def add(  # noqa: PLR0917 - one parameter per flag, as click passes them
    name: str,
    handler: str | None,
    url: str | None,
    builtin: str | None,
    env_pairs: tuple[str, ...],
    timeout: float,
    interpreter: str | None,
    **flags: Any,
) -> None:
    """Register the rotation function NAME.

    RotateSecret names it as arn:aws:lambda:<region>:<account>:function:NAME (any region).
    """
    if not _NAME.fullmatch(name):
        raise click.BadParameter("1-64 letters, digits, hyphens or underscores", param_hint="NAME")
    if sum(x is not None for x in (handler, url, builtin)) != 1:
        raise click.UsageError("give exactly one of --handler, --url and --builtin")
    if handler is not None:
        path, sep, function = handler.rpartition(":")
        if not sep or not function.isidentifier() or not Path(path).is_file():
            raise click.BadParameter(
                "PATH/TO/file.py:function, with an existing file", param_hint="--handler"
            )
        handler = f"{Path(path).resolve()}:{function}"
    if url is not None and not url.startswith(("http://", "https://")):
        raise click.BadParameter("an http:// or https:// URL", param_hint="--url")
    if builtin is not None:
        builtin_handler(builtin)  # fails now rather than at the first rotation
    if timeout <= 0 or timeout > 900:  # noqa: PLR2004 - Lambda's own limit
        raise click.BadParameter("between 0 and 900 seconds", param_hint="--timeout")
    installation = _open(flags)
    try:
        aad = aad_for_function_env(installation.account_id, name)
        sealed = installation.sealer.seal(json.dumps(_env(env_pairs)).encode(), aad)
        row = FunctionRow(
            account_id=installation.account_id,
            name=name,
            sealed_env=sealed,
            master_key_id=installation.sealer.key_id_of(sealed),
            timeout=timeout,
            created_at=time.time(),
            handler=handler,
            url=url,
            builtin=builtin,
            python=interpreter,
        )
        with installation.store.write() as tx:
            tx.insert_function(row)
    except AlreadyExists:
        raise click.ClickException(f"a function named {name} exists: remove it first") from None
    finally:
        installation.close()
    click.echo(_arn(installation, name))


@functions.command("list")
@setting_options("data_dir", "database_url", "master_key_file")
def list_functions(**flags: Any) -> None:
    """The registered rotation functions."""
    installation = _open(flags)
    try:
        with installation.store.read() as tx:
            rows = tx.functions(installation.account_id)
    finally:
        installation.close()
    table = Table("name", "runs", "timeout", "arn")
    for row in rows:
        runs = row.handler or row.url or f"built-in {row.builtin}"
        table.add_row(row.name, runs, f"{row.timeout:g} s", _arn(installation, row.name))
    Console().print(table)


@functions.command("remove")
@click.argument("name")
@setting_options("data_dir", "database_url", "master_key_file")
def remove(name: str, **flags: Any) -> None:
    """Unregister NAME; secrets that name it fail to rotate until it is added again."""
    installation = _open(flags)
    try:
        with installation.store.write() as tx:
            removed = tx.delete_function(installation.account_id, name)
    finally:
        installation.close()
    if not removed:
        raise click.ClickException(f"no function named {name}")
    click.echo(f"removed {name}")


def _arn(installation: Installation, name: str) -> str:
    return function_arn(
        partition_for_region(REGION_FOR_ARNS), REGION_FOR_ARNS, installation.account_id, name
    )


@click.group()
def rotations() -> None:
    """What rotations did: attempts, steps, outcome and error."""


@rotations.command("list")
@click.option("--secret", "secret_id", help="only this secret (name or ARN)")
@click.option("--region", default=None, help="the secret's region, when --secret is a name")
@click.option("--limit", type=int, default=20, show_default=True)
@click.option("--output", type=click.Choice(["table", "json"]), default="table")
@setting_options("data_dir", "database_url", "master_key_file")
def list_rotations(
    secret_id: str | None, region: str | None, limit: int, output: str, **flags: Any
) -> None:
    """The latest rotations, newest first, with each step of each attempt."""
    installation = _open(flags)
    try:
        with installation.store.read() as tx:
            secret_pk = None
            if secret_id is not None:
                secret = find_secret_anywhere(tx, installation.account_id, secret_id, region)
                if secret is None:
                    raise click.ClickException(f"no secret {secret_id}")
                secret_pk = secret.pk
            found = tx.rotations(installation.account_id, secret_pk, limit)
            steps = {row.pk: tx.rotation_steps(row.pk) for row, _ in found}
    finally:
        installation.close()
    if output == "json":
        for row, arn in found:
            record = {
                "secret": arn,
                "version_id": row.version_id,
                "function": row.function_arn,
                "state": row.state,
                "attempts": row.attempts,
                "error": row.error,
                "started": _when(row.created_at),
                "finished": _when(row.finished_at),
                "steps": [
                    {
                        "attempt": s.attempt,
                        "step": s.step,
                        "ok": s.ok,
                        "seconds": round(s.duration, 3),
                        "error": s.error,
                        "output": s.output,
                    }
                    for s in steps[row.pk]
                ],
            }
            click.echo(json.dumps(record))
        return
    table = Table("started", "secret", "state", "attempts", "steps", "error")
    for row, arn in found:
        done = " ".join(f"{s.attempt}:{s.step}{'' if s.ok else '✗'}" for s in steps[row.pk])
        table.add_row(
            _when(row.created_at), arn, row.state, str(row.attempts), done, row.error or ""
        )
    Console(width=200).print(table)


def find_secret_anywhere(
    tx: Transaction, account_id: str, secret_id: str, region: str | None
) -> SecretRow | None:
    """A secret by ARN (full or partial), or by name in ``region``."""
    if not secret_id.startswith("arn:") and region is None:
        raise click.UsageError("give --region with a secret name, or the secret's ARN")
    return lookup_secret(tx, account_id, region, secret_id)


def _when(epoch: float | None) -> str:
    if epoch is None:
        return ""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

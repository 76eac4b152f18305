"""The rotation part of ``SqlTransaction`` (see ``storage.base`` for the contract).

Rotations are claimed through the database (a conditional UPDATE on the lease), so that each
runs on one server process at a time and a rotation whose process died is taken over once
its lease runs out, on any node.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from strongroom.storage import schema
from strongroom.storage.base import (
    AlreadyExists,
    ConstraintViolation,
    FunctionRow,
    RotationRow,
    RotationStepRow,
    SecretRow,
)
from strongroom.storage.execute import Executor

_S = schema.secrets
_F = schema.rotation_functions
_R = schema.rotations
_RS = schema.rotation_steps

ACTIVE = ("pending", "running")


def _function(row: Any) -> FunctionRow:
    values = row._asdict()
    values["sealed_env"] = bytes(values["sealed_env"])
    return FunctionRow(**values)


def _rotation(row: Any) -> RotationRow:
    values = row._asdict()
    values["immediately"] = bool(values["immediately"])
    return RotationRow(**values)


class RotationQueries:
    """Mixed into ``SqlTransaction``: the rotation methods of the ``Transaction`` contract."""

    db: Executor

    def _secret_row(self, row: Any) -> SecretRow:
        raise NotImplementedError  # provided by SqlTransaction

    # -- functions -------------------------------------------------------------------------------
    def function(self, account_id: str, name: str) -> FunctionRow | None:
        row = self.db.execute(
            sa.select(_F).where(_F.c.account_id == account_id, _F.c.name == name)
        ).first()
        return None if row is None else _function(row)

    def insert_function(self, row: FunctionRow) -> None:
        values = {c.name: getattr(row, c.name) for c in _F.columns}
        try:
            with self.db.savepoint():
                self.db.execute(sa.insert(_F).values(values))
        except ConstraintViolation as exc:
            raise AlreadyExists(row.name) from exc

    def delete_function(self, account_id: str, name: str) -> bool:
        result = self.db.execute(
            sa.delete(_F).where(_F.c.account_id == account_id, _F.c.name == name)
        )
        return result.rowcount > 0

    def functions(self, account_id: str) -> list[FunctionRow]:
        rows = self.db.execute(
            sa.select(_F).where(_F.c.account_id == account_id).order_by(_F.c.name)
        )
        return [_function(row) for row in rows]

    def function_env_blobs(self) -> list[tuple[str, str, bytes]]:
        rows = self.db.execute(sa.select(_F.c.account_id, _F.c.name, _F.c.sealed_env))
        return [(account, name, bytes(blob)) for account, name, blob in rows]

    def replace_function_env_blob(
        self, account_id: str, name: str, sealed: bytes, key_id: str
    ) -> None:
        self.db.execute(
            sa.update(_F)
            .where(_F.c.account_id == account_id, _F.c.name == name)
            .values(sealed_env=sealed, master_key_id=key_id)
        )

    # -- rotations -------------------------------------------------------------------------------
    def insert_rotation(self, row: RotationRow) -> int:
        values = {c.name: getattr(row, c.name) for c in _R.columns if c.name != "pk"}
        try:
            with self.db.savepoint():
                result = self.db.execute(sa.insert(_R).values(values).returning(_R.c.pk))
        except ConstraintViolation as exc:
            raise AlreadyExists(row.version_id) from exc
        return int(result.scalar())

    def rotation(self, pk: int) -> RotationRow | None:
        row = self.db.execute(sa.select(_R).where(_R.c.pk == pk)).first()
        return None if row is None else _rotation(row)

    def rotation_for_version(self, secret_pk: int, version_id: str) -> RotationRow | None:
        row = self.db.execute(
            sa.select(_R).where(_R.c.secret_pk == secret_pk, _R.c.version_id == version_id)
        ).first()
        return None if row is None else _rotation(row)

    def active_rotation(self, secret_pk: int) -> RotationRow | None:
        row = self.db.execute(
            sa.select(_R)
            .where(_R.c.secret_pk == secret_pk, _R.c.state.in_(ACTIVE))
            .order_by(_R.c.pk.desc())
            .limit(1)
        ).first()
        return None if row is None else _rotation(row)

    def update_rotation(self, pk: int, **values: Any) -> None:
        self.db.execute(sa.update(_R).where(_R.c.pk == pk).values(**values))

    def claim_rotation(self, pk: int, owner: str, now: float, lease_until: float) -> bool:
        due = sa.and_(_R.c.state == "pending", _R.c.next_attempt_at <= now)
        abandoned = sa.and_(_R.c.state == "running", _R.c.lease_expires_at < now)
        result = self.db.execute(
            sa.update(_R)
            .where(_R.c.pk == pk, sa.or_(due, abandoned))
            .values(state="running", lease_owner=owner, lease_expires_at=lease_until)
        )
        return result.rowcount == 1

    def renew_rotation(self, pk: int, owner: str, lease_until: float, **values: Any) -> bool:
        updated = self.db.execute(
            sa.update(_R)
            .where(_R.c.pk == pk, _R.c.state == "running", _R.c.lease_owner == owner)
            .values(lease_expires_at=lease_until, **values)
        )
        return updated.rowcount == 1

    def claimable_rotations(self, now: float, limit: int) -> list[RotationRow]:
        due = sa.and_(_R.c.state == "pending", _R.c.next_attempt_at <= now)
        abandoned = sa.and_(_R.c.state == "running", _R.c.lease_expires_at < now)
        rows = self.db.execute(
            sa.select(_R).where(sa.or_(due, abandoned)).order_by(_R.c.pk).limit(limit)
        )
        return [_rotation(row) for row in rows]

    def secret_by_pk(self, pk: int) -> SecretRow | None:
        row = self.db.execute(sa.select(_S).where(_S.c.pk == pk)).first()
        return None if row is None else self._secret_row(row)

    def secrets_due_for_rotation(self, now: float, limit: int) -> list[SecretRow]:
        # Only rotation_due_at in the WHERE clause, so that its index serves the query (with
        # deletion_date there, SQLite picks that index and scans every live secret); the
        # scheduler re-checks the rest under the secret's lock.
        rows = self.db.execute(
            sa.select(_S)
            .where(_S.c.rotation_due_at <= now)
            .order_by(_S.c.rotation_due_at)
            .limit(limit)
        )
        secrets = [self._secret_row(row) for row in rows]
        return [s for s in secrets if s.rotation_enabled and s.deletion_date is None]

    def insert_rotation_step(self, row: RotationStepRow) -> None:
        values = {c.name: getattr(row, c.name) for c in _RS.columns}
        self.db.execute(sa.insert(_RS).values(values))

    def rotations(
        self, account_id: str, secret_pk: int | None, limit: int
    ) -> list[tuple[RotationRow, str]]:
        query = (
            sa.select(_R, _S.c.arn.label("secret_arn"))
            .join(_S, _S.c.pk == _R.c.secret_pk)
            .where(_S.c.account_id == account_id)
            .order_by(_R.c.pk.desc())
            .limit(limit)
        )
        if secret_pk is not None:
            query = query.where(_R.c.secret_pk == secret_pk)
        out = []
        for row in self.db.execute(query):
            values = row._asdict()
            arn = values.pop("secret_arn")
            values["immediately"] = bool(values["immediately"])
            out.append((RotationRow(**values), arn))
        return out

    def rotation_steps(self, rotation_pk: int) -> list[RotationStepRow]:
        rows = self.db.execute(
            sa.select(_RS)
            .where(_RS.c.rotation_pk == rotation_pk)
            .order_by(_RS.c.attempt, _RS.c.started_at)
        )
        out = []
        for row in rows:
            values = row._asdict()
            values["ok"] = bool(values["ok"])
            out.append(RotationStepRow(**values))
        return out

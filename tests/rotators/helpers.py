"""Driving a rotator through a rotation, as the rotation runner will."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
Handler = Callable[[dict[str, Any], Any], None]


def event(step: str, secret_id: str, token: str) -> dict[str, Any]:
    return {
        "Step": step,
        "SecretId": secret_id,
        "ClientRequestToken": token,
        "RotationToken": str(uuid.uuid4()),
    }


def rotate(
    handler: Handler,
    client: Any,
    prepare: Callable[[Any, str, str], None],
    secret_id: str,
    steps: tuple[str, ...] = STEPS,
) -> str:
    """Prepare a rotation and run ``steps`` in order; the new version's id."""
    token = str(uuid.uuid4())
    prepare(client, secret_id, token)
    for step in steps:
        handler(event(step, secret_id, token), None)
    return token


def value(client: Any, secret_id: str, **selector: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(
        client.get_secret_value(SecretId=secret_id, **selector)["SecretString"]
    )
    return loaded


def labels(client: Any, secret_id: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = client.describe_secret(SecretId=secret_id)["VersionIdsToStages"]
    return found

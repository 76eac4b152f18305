"""The Secrets Manager half of a rotation function, shared by every built-in rotator.

Theory of operation
-------------------
Secrets Manager (Strongroom) calls a rotation function four times per rotation, each time with
``{"Step", "SecretId", "ClientRequestToken"}`` and, newer, ``"RotationToken"``: createSecret,
setSecret, testSecret, finishSecret. Any step may be retried, so each one is idempotent. Before
any step the function checks, as AWS's templates do, that the secret is enabled for rotation
and that the token names a version labelled AWSPENDING; a version already labelled AWSCURRENT
means the rotation finished, and the call does nothing.

Exceptions carry no secret material: only ARNs, version ids, user and host names.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import boto3

logger = logging.getLogger("strongroom.rotators")
# A rotation function's own process logs its steps; where a handler is configured (the
# runner, the Lambda runtime) INFO must get through.
logger.setLevel(logging.INFO)

AWSCURRENT = "AWSCURRENT"
AWSPENDING = "AWSPENDING"
AWSPREVIOUS = "AWSPREVIOUS"
ENGINES = ("postgres", "aurora-postgresql")
REQUIRED_FIELDS = ("host", "username", "password", "engine")
# AWS's templates' default: characters that break connection strings, URIs and shell quoting.
DEFAULT_EXCLUDE_CHARACTERS = ":/@\"'\\"

SecretDict = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Rotation:
    """One step's call: the client, the secret and the version being rotated to."""

    client: Any  # botocore's SecretsManager client (untyped)
    arn: str
    token: str
    rotation_token: str | None = None


Step = Callable[[Rotation], None]


def make_client() -> Any:
    """A Secrets Manager client for the endpoint, region and credentials the runner set.

    A new session each time: a long-lived process must not keep the credentials of an
    earlier call (the runner hands out temporary credentials per rotation).
    """
    endpoint = os.environ.get("SECRETS_MANAGER_ENDPOINT") or None  # else AWS_ENDPOINT_URL
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None
    return boto3.session.Session().client(
        "secretsmanager", endpoint_url=endpoint, region_name=region
    )


def handle(event: Mapping[str, Any], steps: Mapping[str, Step]) -> None:
    """Check the secret is mid-rotation to ``ClientRequestToken``, then run ``event["Step"]``."""
    arn, token, step = event["SecretId"], event["ClientRequestToken"], event["Step"]
    logger.info("%s: secret %s, version %s", step, arn, token)
    rotation = Rotation(make_client(), arn, token, event.get("RotationToken"))
    if not _is_pending(rotation):
        return
    run = steps.get(step)
    if run is None:
        raise ValueError(f"Invalid step parameter {step} for secret {arn}")
    run(rotation)


def _is_pending(rotation: Rotation) -> bool:
    arn, token = rotation.arn, rotation.token
    metadata = rotation.client.describe_secret(SecretId=arn)
    # As AWS's templates: only an explicit false stops the rotation.
    if "RotationEnabled" in metadata and not metadata["RotationEnabled"]:
        raise ValueError(f"Secret {arn} is not enabled for rotation")
    versions = metadata.get("VersionIdsToStages", {})
    if token not in versions:
        raise ValueError(f"Secret version {token} has no stage for rotation of secret {arn}.")
    if AWSCURRENT in versions[token]:
        logger.info("Secret version %s already set as AWSCURRENT for secret %s.", token, arn)
        return False
    if AWSPENDING not in versions[token]:
        raise ValueError(
            f"Secret version {token} not set as AWSPENDING for rotation of secret {arn}."
        )
    return True


def get_secret_dict(
    client: Any, secret_id: str, stage: str, token: str | None = None
) -> SecretDict:
    """The JSON value of the version with ``stage`` (and id ``token`` when given), checked.

    Raises the client's ResourceNotFoundException when there is no such value, ValueError
    when it is not a JSON object for a PostgreSQL engine, KeyError when a field is missing.
    """
    request = {"SecretId": secret_id, "VersionStage": stage}
    if token:
        request["VersionId"] = token
    value = json.loads(client.get_secret_value(**request)["SecretString"])
    if not isinstance(value, dict):
        # A bad value, not a bad argument type.
        raise ValueError(f"The {stage} value of secret {secret_id} is not a JSON object")  # noqa: TRY004
    for name in REQUIRED_FIELDS:
        if name not in value:
            raise KeyError(f"{name} key is missing from secret JSON")
    if value["engine"] not in ENGINES:
        raise ValueError(
            "Database engine must be set to 'postgres' in order to use this rotation function"
        )
    return value


def get_previous_dict(client: Any, secret_id: str) -> SecretDict | None:
    try:
        return get_secret_dict(client, secret_id, AWSPREVIOUS)
    except (client.exceptions.ResourceNotFoundException, KeyError, ValueError):
        return None


def _env_bool(name: str, default: bool) -> bool:
    return os.environ.get(name, str(default)).lower() in {"true", "1", "y", "yes"}


def random_password(client: Any) -> str:
    """GetRandomPassword, shaped by the same environment variables as AWS's templates."""
    result = client.get_random_password(
        ExcludeCharacters=os.environ.get("EXCLUDE_CHARACTERS", DEFAULT_EXCLUDE_CHARACTERS),
        PasswordLength=int(os.environ.get("PASSWORD_LENGTH", "32")),
        ExcludeNumbers=_env_bool("EXCLUDE_NUMBERS", default=False),
        ExcludePunctuation=_env_bool("EXCLUDE_PUNCTUATION", default=False),
        ExcludeUppercase=_env_bool("EXCLUDE_UPPERCASE", default=False),
        ExcludeLowercase=_env_bool("EXCLUDE_LOWERCASE", default=False),
        RequireEachIncludedType=_env_bool("REQUIRE_EACH_INCLUDED_TYPE", default=True),
    )
    return str(result["RandomPassword"])


def create_secret(rotation: Rotation, make_pending: Callable[[SecretDict], SecretDict]) -> None:
    """createSecret: store ``make_pending(current)`` as the AWSPENDING version, unless the
    version already has a value (a retried step)."""
    client, arn, token = rotation.client, rotation.arn, rotation.token
    current = get_secret_dict(client, arn, AWSCURRENT)
    try:
        get_secret_dict(client, arn, AWSPENDING, token)
    except client.exceptions.ResourceNotFoundException:
        pass
    else:
        logger.info("createSecret: version %s of %s already has a value.", token, arn)
        return
    request: dict[str, Any] = {
        "SecretId": arn,
        "ClientRequestToken": token,
        "SecretString": json.dumps(make_pending(current)),
        "VersionStages": [AWSPENDING],
    }
    if rotation.rotation_token:
        request["RotationToken"] = rotation.rotation_token
    client.put_secret_value(**request)
    logger.info("createSecret: stored version %s of %s as AWSPENDING.", token, arn)


def finish_secret(rotation: Rotation) -> None:
    """finishSecret: move AWSCURRENT to the rotated version (the old one becomes AWSPREVIOUS)."""
    client, arn, token = rotation.client, rotation.arn, rotation.token
    versions = client.describe_secret(SecretId=arn).get("VersionIdsToStages", {})
    current = next((vid for vid, stages in versions.items() if AWSCURRENT in stages), None)
    if current == token:
        logger.info("finishSecret: version %s of %s is already AWSCURRENT.", token, arn)
        return
    request = {"SecretId": arn, "VersionStage": AWSCURRENT, "MoveToVersionId": token}
    if current is not None:
        request["RemoveFromVersionId"] = current
    client.update_secret_version_stage(**request)
    logger.info("finishSecret: version %s of %s is now AWSCURRENT.", token, arn)

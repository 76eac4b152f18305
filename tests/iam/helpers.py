"""Shared bits of the IAM tests: error capture and policy documents."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from strongroom.errors import ServiceError

ALLOW_ALL = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
)


def error_of(call: Callable[[], Any]) -> ServiceError:
    with pytest.raises(ServiceError) as info:
        call()
    return info.value


def allow(action: str, resource: str = "*") -> str:
    statement = {"Effect": "Allow", "Action": action, "Resource": resource}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def trust(principal: str) -> str:
    statement = {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})

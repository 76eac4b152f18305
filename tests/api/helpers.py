"""Small helpers the API tests share."""

from __future__ import annotations

import uuid

import pytest
from botocore.exceptions import ClientError


def refusal(call, **kwargs) -> tuple[str, str]:
    """The (code, message) of a call that must fail with an HTTP 400."""
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    error = caught.value.response["Error"]
    return error["Code"], error["Message"]


def body(response: dict) -> dict:
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


def token() -> str:
    return str(uuid.uuid4())


def error_of(info: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = info.value.response["Error"]
    return error["Code"], error["Message"]

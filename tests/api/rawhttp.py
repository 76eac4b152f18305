"""Signed raw requests: what boto3 will not send (no ClientRequestToken, no value at all).

botocore fills idempotency tokens and refuses requests that break ``required``/``min``
client-side, so these tests build the JSON body themselves and sign it with SigV4 exactly as
an SDK would, using the root test credentials the server knows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from tests.conftest import ROOT_KEY_ID, ROOT_SECRET

CONTENT_TYPE = "application/x-amz-json-1.1"


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: httpx.Headers
    body: dict[str, Any]


def signed_call(url: str, region: str, action: str, body: dict[str, Any]) -> RawResponse:
    """POST ``body`` as ``secretsmanager.<action>``, signed for ``region``; parse the JSON."""
    data = json.dumps(body).encode()
    request = AWSRequest(
        method="POST",
        url=url + "/",
        data=data,
        headers={"Content-Type": CONTENT_TYPE, "X-Amz-Target": f"secretsmanager.{action}"},
    )
    SigV4Auth(Credentials(ROOT_KEY_ID, ROOT_SECRET), "secretsmanager", region).add_auth(request)
    response = httpx.post(url + "/", content=data, headers=dict(request.headers.items()))
    return RawResponse(
        status=response.status_code,
        headers=response.headers,
        body=response.json() if response.content else {},
    )

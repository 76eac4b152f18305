"""IAM and STS share the endpoint: the Query front end's own answers, over raw HTTP."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from urllib.parse import urlencode

import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from tests.conftest import ROOT_KEY_ID, ROOT_SECRET, Server

FORM = "application/x-www-form-urlencoded; charset=utf-8"


def _post(
    server: Server,
    form: dict[str, str],
    *,
    service: str = "sts",
    secret: str = ROOT_SECRET,
    sign: bool = True,
) -> tuple[int, dict[str, str], httpx.Headers]:
    data = urlencode(form).encode()
    headers = {"Content-Type": FORM}
    if sign:
        request = AWSRequest(method="POST", url=server.url + "/", data=data, headers=headers)
        SigV4Auth(Credentials(ROOT_KEY_ID, secret), service, "us-east-1").add_auth(request)
        headers = dict(request.headers.items())
    response = httpx.post(server.url + "/", content=data, headers=headers)
    root = ET.fromstring(response.content)  # noqa: S314 - our own server's reply
    fields = {element.tag.split("}")[-1]: (element.text or "") for element in root.iter()}
    return response.status_code, fields, response.headers


def test_unsigned_request_is_refused_before_the_action_is_looked_at(server):
    status, fields, headers = _post(
        server, {"Action": "NoSuchThing", "Version": "2011-06-15"}, sign=False
    )
    assert status == 403
    assert fields["Code"] == "MissingAuthenticationToken"
    assert fields["Type"] == "Sender"
    assert fields["RequestId"] == headers["x-amzn-requestid"]


def test_unknown_action(server):
    status, fields, _ = _post(server, {"Action": "NoSuchThing", "Version": "2011-06-15"})
    assert status == 400
    assert fields["Code"] == "InvalidAction"
    assert fields["Message"] == "Could not find operation NoSuchThing for version 2011-06-15"


def test_wrong_secret_key_is_signature_does_not_match(server):
    status, fields, _ = _post(
        server, {"Action": "GetCallerIdentity", "Version": "2011-06-15"}, secret="wrong"
    )
    assert status == 403
    assert fields["Code"] == "SignatureDoesNotMatch"
    assert "wrong" not in fields["Message"]


@pytest.mark.parametrize("service", ["iam", "sts"])
def test_scope_decides_the_service(server, service):
    action = "ListUsers" if service == "iam" else "GetCallerIdentity"
    version = "2010-05-08" if service == "iam" else "2011-06-15"
    status, fields, headers = _post(server, {"Action": action, "Version": version}, service=service)
    assert status == 200
    assert headers["content-type"].startswith("text/xml")
    assert fields["RequestId"] == headers["x-amzn-requestid"]

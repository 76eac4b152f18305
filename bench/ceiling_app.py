"""A constant-response ASGI app under uvicorn: the ceiling of a Python HTTP service here.

It reads the request body and answers with a fixed GetSecretValue-shaped document, with no
signature check, parsing or storage. Served exactly as ``strongroom serve`` serves (uvicorn,
default loop and HTTP implementation, one process, no access log), so the gap between this
and Strongroom is what Strongroom's own code costs, and the rate this reaches shows the load
client is not the bottleneck.

    .venv/bin/python bench/ceiling_app.py --port 9000
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import uvicorn

BODY = json.dumps(
    {
        "ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:bench/secret-000001-AbCdEf",
        "Name": "bench/secret-000001",
        "VersionId": "c3b7d6e1-8f1a-4b7e-9a55-0d1e2f3a4b5c",
        "SecretString": '{"username": "app_user", "password": "x7#Qv9!mR2@pL4$wZ8^kT1"}',
        "VersionStages": ["AWSCURRENT"],
        "CreatedDate": 1764320000.0,
    }
).encode()
HEADERS = [
    (b"content-type", b"application/x-amz-json-1.1"),
    (b"content-length", str(len(BODY)).encode()),
]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        server_header=False,
    )


if __name__ == "__main__":
    main()

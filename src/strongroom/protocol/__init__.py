"""AWS JSON 1.1 over HTTP: read the request, route on X-Amz-Target, write the answer.

Never imports storage or crypto: it hands a validated request to an operation and turns what
comes back (a result or a ``ServiceError``) into bytes.
"""

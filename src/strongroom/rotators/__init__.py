"""The rotation functions Strongroom ships, Lambda-style ``lambda_handler(event, context)``.

They run in a process of their own (``strongroom functions add NAME --builtin KIND``), reach
the server through boto3 with the endpoint, region and temporary credentials the runner puts
in the environment. The rotation host loads a built-in by its file path; its imports are
absolute (``strongroom.rotators._steps``), so the interpreter must have Strongroom and the
``rotators`` extra (boto3, psycopg): the server's own, unless ``--python`` says otherwise.
The server never imports these modules, so it runs without that extra.

Reading another secret (``masterarn``) needs a grant beyond the rotation session's own
policy, which covers only the secret being rotated: a resource policy on the master secret.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

# --builtin KIND -> the module whose ``lambda_handler`` it runs.
BUILTINS: dict[str, str] = {
    "postgresql-single-user": "strongroom.rotators.postgresql_single_user",
    "postgresql-alternating-users": "strongroom.rotators.postgresql_alternating_users",
}

Handler = Callable[[dict[str, Any], Any], None]


def load(kind: str) -> Handler:
    """The ``lambda_handler`` of built-in ``kind``; KeyError for an unknown kind, ImportError
    when the ``rotators`` extra is not installed."""
    handler: Handler = importlib.import_module(BUILTINS[kind]).lambda_handler
    return handler

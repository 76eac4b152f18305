"""The AWS Query protocol that IAM and STS speak, driven by the models botocore ships.

A request is ``POST /`` with a form body (``Action=CreateUser&Version=2010-05-08&UserName=a``);
the answer is XML in the service's namespace::

    <CreateUserResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">
      <CreateUserResult>...</CreateUserResult>
      <ResponseMetadata><RequestId>...</RequestId></ResponseMetadata>
    </CreateUserResponse>

and an error is ``<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/>`` (an IAM
answer quoted in NixOS/nixops#328; STS sends the same envelope in its own namespace).
Reading the form is in ``query_input``, writing XML in ``query_output``; this module ties them
to the model's operations and error shapes.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

from botocore.loaders import Loader
from botocore.model import OperationModel, Shape
from botocore.model import ServiceModel as BotocoreServiceModel

from strongroom.errors import MalformedQueryString
from strongroom.protocol.constraints import Violation
from strongroom.protocol.query_input import (
    ABSENT,
    InputCompiler,
    Parse,
    fold,
    raise_violations,
)
from strongroom.protocol.query_output import OutputCompiler, escape, with_datetimes

_XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'


class QueryOperation:
    def __init__(
        self,
        name: str,
        xmlns: str,
        parse: Parse | None,
        write: Callable[[list[str], Mapping[str, Any]], None] | None,
        result_tag: str,
        *,
        output: Shape | None = None,
    ) -> None:
        self.name = name
        self._xmlns = xmlns
        self._parse = parse
        self._write = write
        self._result_tag = result_tag
        self._output = output

    def parse_input(self, form: Mapping[str, str]) -> dict[str, Any]:
        """The decoded form (without Action and Version) -> members by model name, typed.

        Raises ``ValidationError`` with AWS's text when a constraint fails. Keys the model does
        not know are ignored (see ``query_input``).
        """
        if self._parse is None:
            return {}
        errors: list[Violation] = []
        result = self._parse(fold(form), errors)
        raise_violations(errors)
        return {} if result is ABSENT else dict(result)

    def typed_output(self, result: Mapping[str, Any]) -> Mapping[str, Any]:
        """``result`` with its timestamps as datetimes, as the audit record wants them."""
        return result if self._output is None else with_datetimes(result, self._output)

    def serialize_output(self, result: Mapping[str, Any], request_id: str) -> bytes:
        out = [_XML_DECLARATION, f'<{self.name}Response xmlns="{self._xmlns}">']
        if self._write is not None:
            out.append(f"<{self._result_tag}>")
            self._write(out, result)
            out.append(f"</{self._result_tag}>")
        out.append(
            f"<ResponseMetadata><RequestId>{escape(request_id)}</RequestId></ResponseMetadata>"
        )
        out.append(f"</{self.name}Response>")
        return "".join(out).encode("utf-8")


class QueryService:
    def __init__(self, model: BotocoreServiceModel) -> None:
        self.name: str = model.service_name
        self.xmlns: str = model.metadata["xmlNamespace"]
        inputs, outputs = InputCompiler(), OutputCompiler()
        self._operations = {
            name: self._compile(model.operation_model(name), inputs, outputs)
            for name in model.operation_names
        }
        self._status: dict[str, int] = {}
        for shape_name in model.shape_names:
            error = model.shape_for(shape_name).metadata.get("error")
            if error is not None:
                self._status[error.get("code", shape_name)] = error.get("httpStatusCode", 400)

    def _compile(
        self, op: OperationModel, inputs: InputCompiler, outputs: OutputCompiler
    ) -> QueryOperation:
        parse = inputs.parser(op.input_shape) if op.input_shape is not None else None
        output = op.output_shape
        write = outputs.members(output) if output is not None else None
        wrapper = output.serialization.get("resultWrapper") if output is not None else None
        tag = wrapper or f"{op.name}Result"
        return QueryOperation(op.name, self.xmlns, parse, write, tag, output=output)

    @classmethod
    def load(cls, service: str) -> QueryService:
        """The compiled model of "iam" or "sts", built once per process."""
        return _load(service)

    def operation(self, action: str) -> QueryOperation | None:
        return self._operations.get(action)

    def error_status(self, code: str) -> int:
        """The HTTP status the model gives this error code; 400 for codes it does not list."""
        return self._status.get(code, 400)


@functools.cache
def _load(service: str) -> QueryService:
    raw = Loader().load_service_model(service, "service-2")
    return QueryService(BotocoreServiceModel(raw, service_name=service))


def error_xml(
    service: QueryService, code: str, message: str, request_id: str, *, fault: bool = False
) -> bytes:
    """The ErrorResponse botocore's QueryParser reads; ``fault`` marks a server-side error."""
    kind = "Receiver" if fault else "Sender"
    return (
        f'{_XML_DECLARATION}<ErrorResponse xmlns="{service.xmlns}">'
        f"<Error><Type>{kind}</Type><Code>{escape(code)}</Code>"
        f"<Message>{escape(message)}</Message></Error>"
        f"<RequestId>{escape(request_id)}</RequestId></ErrorResponse>"
    ).encode()


_BAD_PERCENT = re.compile(rb"%(?![0-9A-Fa-f]{2})")


def decode_form(body: bytes, query_string: bytes) -> dict[str, str]:
    """The parameters of the query string and the form body, percent-decoded as UTF-8.

    A key sent twice keeps its first value, as a Java servlet's getParameter does (what
    Coral does is UNCONFIRMED); the query string comes before the body. A stray ``%`` or
    bytes that are not UTF-8 raise ``MalformedQueryString``.
    """
    form: dict[str, str] = {}
    for part in (query_string, body):
        if not part:
            continue
        if _BAD_PERCENT.search(part):
            raise MalformedQueryString("The query string contains a syntax error.")
        try:
            text = part.decode("utf-8")
            pairs = parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict")
        except UnicodeError:
            raise MalformedQueryString("The query string contains a syntax error.") from None
        for key, value in pairs:
            form.setdefault(key, value)
    return form

"""Every error a client can see, one class per AWS error code.

The protocol layer turns a raised ``ServiceError`` into ``{"__type": code, "Message": text}``
with the class's HTTP status. Lower layers raise their own exceptions (storage raises
``strongroom.storage.base.StorageError`` subclasses); ``operations`` converts them here.
Messages are part of the wire contract: they are the texts AWS sends, and never contain
secret material.

    ServiceError (400)
    ├── ClientError (400)
    │   ├── ResourceNotFoundException
    │   ├── ResourceExistsException
    │   ├── InvalidParameterException
    │   ├── InvalidRequestException
    │   ├── InvalidNextTokenException
    │   ├── LimitExceededException
    │   ├── MalformedPolicyDocumentException
    │   ├── PublicPolicyException
    │   ├── PreconditionNotMetException
    │   ├── ValidationException            (front-end constraint checks)
    │   ├── AccessDeniedException
    │   ├── SerializationException
    │   ├── UnknownOperationException
    │   ├── ThrottlingException
    │   ├── DecryptionFailure / EncryptionFailure
    │   ├── ValidationError, MalformedQueryString    (Query protocol: IAM, STS)
│   ├── NoSuchEntity (404), EntityAlreadyExists, DeleteConflict, LimitExceeded (409),
│   │   MalformedPolicyDocument, InvalidInput, AccessDenied (403)     (IAM, STS)
    │   └── AuthError
    │       ├── MissingAuthenticationTokenException
    │       ├── IncompleteSignatureException
    │       ├── InvalidSignatureException
    │       ├── UnrecognizedClientException
    │       └── ExpiredTokenException
    └── ServerError (500)
        └── InternalServiceError          (the model marks it a fault)
"""

from __future__ import annotations

from typing import ClassVar


class ServiceError(Exception):
    """An error with an AWS error code, an HTTP status and a client-safe message."""

    code: ClassVar[str] = "ServiceError"
    status: ClassVar[int] = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        # The class name is the AWS code unless a class overrides it explicitly.
        if "code" not in cls.__dict__:
            cls.code = cls.__name__


class ClientError(ServiceError):
    status = 400


class ResourceNotFoundException(ClientError):
    pass


class ResourceExistsException(ClientError):
    pass


class InvalidParameterException(ClientError):
    pass


class InvalidRequestException(ClientError):
    pass


class InvalidNextTokenException(ClientError):
    pass


class LimitExceededException(ClientError):
    pass


class MalformedPolicyDocumentException(ClientError):
    pass


class PublicPolicyException(ClientError):
    pass


class PreconditionNotMetException(ClientError):
    pass


class ValidationException(ClientError):
    pass


class AccessDeniedException(ClientError):
    pass


class SerializationException(ClientError):
    pass


class UnknownOperationException(ClientError):
    pass


class ThrottlingException(ClientError):
    pass


class RequestEntityTooLargeException(ClientError):
    status = 413


class AuthError(ClientError):
    """A request whose signature or credentials were refused."""


class MissingAuthenticationTokenException(AuthError):
    # 400, not 403: what AWS JSON-protocol services send (as recorded from DynamoDB).
    status = 400


class IncompleteSignatureException(AuthError):
    pass


class InvalidSignatureException(AuthError):
    pass


class UnrecognizedClientException(AuthError):
    pass


class ExpiredTokenException(AuthError):
    pass


class ServerError(ServiceError):
    status = 500


class InternalServiceError(ServerError):
    pass


class DecryptionFailure(ClientError):
    pass


class EncryptionFailure(ClientError):
    pass


# Texts that more than one operation sends, verbatim from AWS (see docs/api-spec.md §16).
SECRET_NOT_FOUND = "Secrets Manager can't find the specified secret."  # noqa: S105 - a message
MARKED_FOR_DELETION = (
    "You can't perform this operation on the secret because it was marked for deletion."
)
INVALID_NAME = (
    "Invalid name. Must be a valid name containing alphanumeric characters, "
    "or any of the following: -/_+=.@!"
)


# Query protocol (IAM, STS): sent as <ErrorResponse><Error><Code>, see protocol/query.py.


class ValidationError(ClientError):
    """A request that breaks the model's constraints (the JSON services say ValidationException)."""


class MalformedQueryString(ClientError):
    # "The query string contains a syntax error.", HTTP 404 (AWS Common Errors pages).
    status = 404


class InvalidAction(ClientError):
    """An Action the service does not have: "Could not find operation X for version V"."""


# IAM and STS: codes and statuses from botocore's iam/sts models (shape "error" traits); the
# class name is the wire code, so none collides with a Secrets Manager class above.


class NoSuchEntity(ClientError):
    status = 404


class EntityAlreadyExists(ClientError):
    status = 409


class DeleteConflict(ClientError):
    status = 409


class LimitExceeded(ClientError):
    status = 409


class MalformedPolicyDocument(ClientError):
    pass


class InvalidInput(ClientError):
    pass


class AccessDenied(ClientError):
    """IAM's and STS's refusal (the JSON services say AccessDeniedException)."""

    status = 403

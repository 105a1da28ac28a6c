"""The server's errors: one type, `ServiceError`, with a stable code and a message for people.

Every server error class lives here. The service layer knows no HTTP statuses: the API
maps each code to one in one table (`api.errors.STATUS_BY_CODE`).
"""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """An error with a stable machine-readable code and a message meant for people.

    `errors` lists field-level problems; `headers` are protocol headers the answer must carry
    (the size a range missed, a retry delay), set where such an error is raised.
    """

    code = "internal_error"

    def __init__(self, message: str, *, code: str | None = None,
                 errors: list[dict[str, Any]] | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.errors = errors or []
        self.headers = dict(headers or {})


class InvalidSpec(ServiceError):
    """The submitted job spec is malformed or breaks a rule of the contract."""

    code = "invalid_spec"


class InvalidLoraPath(InvalidSpec):
    """A `lora_path` that names nothing usable, or something the job cannot continue from."""

    code = "invalid_lora_path"


class InvalidRequest(ServiceError):
    code = "invalid_request"


class InvalidArtifact(InvalidRequest):
    """Files offered to the registry break a rule: names, formats, sizes, missing blobs."""

    code = "invalid_artifact"


class InvalidDataset(InvalidRequest):
    """An uploaded dataset that is not one JSON object per line."""

    code = "invalid_dataset"


class InvalidDigest(InvalidRequest):
    """A sha256 that is not 64 lowercase hex digits."""

    code = "invalid_sha256"


class ChecksumMismatch(InvalidRequest):
    """The bytes do not hash to the sha256 they were announced with."""

    code = "checksum_mismatch"


class TruncatedArtifact(InvalidRequest):
    """The stream ended before the announced number of bytes arrived."""

    code = "truncated_artifact"


class Unauthorized(ServiceError):
    """No bearer token, or one that is unknown or revoked."""

    code = "unauthorized"


class Forbidden(ServiceError):
    """The caller's role or project may not do this."""

    code = "forbidden"


class NotFound(ServiceError):
    code = "not_found"


class Conflict(ServiceError):
    code = "conflict"


class LeaseLost(Conflict):
    """A worker wrote under a lease that is no longer current; nothing was changed."""

    code = "lease_lost"


class PayloadTooLarge(ServiceError):
    code = "payload_too_large"


class ArtifactTooLarge(PayloadTooLarge):
    """The bytes offered exceed the size allowed for this artifact."""

    code = "artifact_too_large"


class UnsupportedMediaType(ServiceError):
    code = "unsupported_media_type"


class RangeNotSatisfiable(ServiceError):
    """A byte range that starts past the end of the blob asked for."""

    code = "range_not_satisfiable"


class DatabaseUnavailable(ServiceError):
    """The database cannot be reached; the request may succeed when retried."""

    code = "database_unavailable"


class ArtifactStoreUnavailable(ServiceError):
    """The artifact store (object storage) failed or could not be reached; the request may
    succeed when retried."""

    code = "artifact_store_unavailable"


class InsufficientStorage(ServiceError):
    """The disk the artifacts are written to is full (or over its quota)."""

    code = "insufficient_storage"


class MigrationsPending(ServiceError):
    """The database schema is behind the code: the service is not ready."""

    code = "migrations_pending"


"""One error type for the whole service; the API maps each code to an HTTP status."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """An error with a stable machine-readable code and a message meant for people."""

    code = "internal_error"

    def __init__(self, message: str, *, code: str | None = None, errors: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.errors = errors or []


class InvalidSpec(ServiceError):
    """The submitted job spec is malformed or breaks a rule of the contract."""

    code = "invalid_spec"


class InvalidRequest(ServiceError):
    code = "invalid_request"


class NotFound(ServiceError):
    code = "not_found"


class Conflict(ServiceError):
    code = "conflict"


class LeaseLost(Conflict):
    """A worker wrote under a lease that is no longer current; nothing was changed."""

    code = "lease_lost"


class PayloadTooLarge(ServiceError):
    code = "payload_too_large"


class UnsupportedMediaType(ServiceError):
    code = "unsupported_media_type"


class UserError(ServiceError):
    """A job failure caused by what the user asked for: never retried."""

    code = "user_error"


# code -> HTTP status; codes not listed map by their class (see api.errors).
HTTP_STATUS: dict[str, int] = {
    "invalid_spec": 422,
    "invalid_request": 422,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
    "lease_lost": 409,
    "idempotency_conflict": 409,
    "payload_too_large": 413,
    "unsupported_media_type": 415,
    "range_not_satisfiable": 416,
    "invalid_artifact": 422,
    "blob_missing": 422,
    "invalid_lora_path": 422,
    "invalid_dataset": 422,
    "adapter_in_use": 409,
    "internal_error": 500,
}


class InvalidArtifact(InvalidRequest):
    """Files offered to the registry break a rule: names, formats, sizes, missing blobs."""

    code = "invalid_artifact"


class InvalidLoraPath(InvalidSpec):
    """A `lora_path` that names nothing usable, or something the job cannot continue from."""

    code = "invalid_lora_path"


class InvalidDataset(InvalidRequest):
    """An uploaded dataset that is not one JSON object per line."""

    code = "invalid_dataset"

"""Every schema the API serves or accepts, in one place: pydantic models apart from the ORM
tables (`db/models.py`). The service layer returns these; routers declare them.

Modules by resource: `jobs` (states and the moves between them), `worker` (the worker
protocol), `registry` (adapters, aliases, checkpoints, files), `datasets`, `auth` (tokens),
`common` (pages, integer bounds). The spec (`service/spec/`) and problem details
(`api/errors.py`) are described where they are parsed and rendered.
"""

from service.schemas.auth import NewToken, Role, TokenCreate, TokenInfo
from service.schemas.common import MAX_BIGINT, MAX_INT, MIN_BIGINT, Page, from_row, json_safe
from service.schemas.datasets import Dataset
from service.schemas.jobs import (
    ACTIVE_STATES,
    TERMINAL_STATES,
    TRANSITIONS,
    Job,
    JobError,
    JobEvent,
    JobState,
    Progress,
)
from service.schemas.registry import (
    Adapter,
    AdapterPatch,
    AdapterResult,
    Alias,
    AliasUpdate,
    Checkpoint,
    ExportedAdapter,
    ExportedAlias,
    FileRef,
    LineageEntry,
    RegistryImport,
    RegistryManifest,
)
from service.schemas.worker import (
    CheckpointUpload,
    Claim,
    ClaimRequest,
    HeartbeatReply,
    JobFailure,
    JobInputs,
    Lease,
    LoraSource,
    Release,
    Report,
    ResumePoint,
    SourceFile,
    WorkerEvent,
)

__all__ = [
    "ACTIVE_STATES", "MAX_BIGINT", "MAX_INT", "MIN_BIGINT", "TERMINAL_STATES", "TRANSITIONS",
    "Adapter", "AdapterPatch", "AdapterResult", "Alias", "AliasUpdate", "Checkpoint",
    "CheckpointUpload", "ExportedAdapter", "ExportedAlias", "RegistryImport", "RegistryManifest",
    "Claim", "ClaimRequest", "Dataset", "FileRef", "HeartbeatReply", "Job", "JobError",
    "JobEvent", "JobFailure", "JobInputs", "JobState", "Lease", "LineageEntry", "LoraSource",
    "NewToken", "Page", "Progress", "Release", "Report", "ResumePoint", "Role", "SourceFile",
    "TokenCreate", "TokenInfo", "WorkerEvent", "from_row", "json_safe",
]  # fmt: skip

"""A client library for accessing loraplane"""

# Generated from clients/python/templates/package_init.py.jinja by `make sdk`.
# The generated API: `loraplane_client.api.<tag>.<operation_id>` and `loraplane_client.models`.
# The hand-written layer (ext.py, fetch.py, transfer.py) adds what generation cannot give.
from .client import AuthenticatedClient, Client
from .ext import (
    ApiError,
    connect,
    download_adapter,
    follow_events,
    ok,
    resolve_adapter,
    submit_spec,
    wait_for_job,
)
from .fetch import ChecksumMismatch
from .transfer import (
    describe_adapter,
    export_registry,
    import_adapter,
    import_registry,
    tag_adapter,
)

__all__ = (
    "ApiError",
    "AuthenticatedClient",
    "ChecksumMismatch",
    "Client",
    "connect",
    "describe_adapter",
    "download_adapter",
    "export_registry",
    "follow_events",
    "import_adapter",
    "import_registry",
    "ok",
    "resolve_adapter",
    "submit_spec",
    "tag_adapter",
    "wait_for_job",
)

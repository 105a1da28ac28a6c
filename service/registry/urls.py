"""The URLs the registry hands out: a `lora_path` to continue from, an adapter's archive."""

from __future__ import annotations


def adapter_lora_path(adapter_id: str, base_url: str | None) -> str:
    """The adapter's URL on this service; its bare id when no base URL is known."""
    return f"{base_url.rstrip('/')}/adapters/{adapter_id}" if base_url else adapter_id

def checkpoint_lora_path(job_id: str, checkpoint_id: str, base_url: str | None) -> str:
    """The checkpoint's URL on this service; its bare id when no base URL is known."""
    if not base_url:
        return checkpoint_id
    return f"{base_url.rstrip('/')}/jobs/{job_id}/checkpoints/{checkpoint_id}"


def adapter_archive_url(adapter_id: str, base_url: str | None) -> str:
    """The adapter's PEFT folder as one tar stream (server-relative without a base URL)."""
    return f"{(base_url or '').rstrip('/')}/adapters/{adapter_id}/archive"

from enum import StrEnum


class WebhookEvent(StrEnum):
    ADAPTER_REGISTERED = "adapter.registered"
    ALIAS_MOVED = "alias.moved"
    JOB_CANCELLED = "job.cancelled"
    JOB_FAILED = "job.failed"
    JOB_SUCCEEDED = "job.succeeded"

    def __str__(self) -> str:
        return str(self.value)

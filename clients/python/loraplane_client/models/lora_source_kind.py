from enum import StrEnum


class LoraSourceKind(StrEnum):
    ADAPTER = "adapter"
    CHECKPOINT = "checkpoint"
    LOCAL = "local"

    def __str__(self) -> str:
        return str(self.value)

from enum import StrEnum


class AdapterResultKind(StrEnum):
    FULL = "full"
    LORA = "lora"

    def __str__(self) -> str:
        return str(self.value)

from enum import StrEnum


class ListAdaptersKindType0(StrEnum):
    FULL = "full"
    LORA = "lora"

    def __str__(self) -> str:
        return str(self.value)

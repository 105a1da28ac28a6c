from enum import StrEnum


class ListAdaptersServableType0(StrEnum):
    PEFT = "peft"
    VLLM = "vllm"

    def __str__(self) -> str:
        return str(self.value)

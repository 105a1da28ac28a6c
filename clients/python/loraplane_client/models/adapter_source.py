from enum import StrEnum


class AdapterSource(StrEnum):
    IMPORT = "import"
    JOB = "job"

    def __str__(self) -> str:
        return str(self.value)

from enum import StrEnum


class JobKind(StrEnum):
    EVALUATION = "evaluation"
    SAMPLE = "sample"
    TRAINING = "training"

    def __str__(self) -> str:
        return str(self.value)

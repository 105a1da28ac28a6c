from enum import StrEnum


class FsdpConfigSpecShardingStrategy(StrEnum):
    FULL_SHARD = "full_shard"
    NO_SHARD = "no_shard"
    SHARD_GRAD_OP = "shard_grad_op"

    def __str__(self) -> str:
        return str(self.value)

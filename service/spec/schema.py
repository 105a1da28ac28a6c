"""The job spec's schema: the RLinf sections loraplane acts on, as strict pydantic models.

Types are strict and unknown keys are refused (`extra="forbid"`); the class names,
docstrings and field descriptions are the `JobSpec` part of the OpenAPI document.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from service.names import NAME_PATTERN

NameStr = Annotated[str, Field(pattern=f"^{NAME_PATTERN}$")]


class Section(BaseModel):
    # The base of every spec section: strict types, unknown keys refused.
    model_config = ConfigDict(extra="forbid", strict=True, validate_default=False)


Precision = Literal["fp32", "bf16", "fp16"]
# RLinf writes dtypes as `bf16`; torch's names are accepted too and stored as RLinf's.
_DTYPE_NAMES = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}


def _dtype_name(value: Any) -> Any:
    return _DTYPE_NAMES.get(value, value) if isinstance(value, str) else value


def _none_as_empty(value: Any) -> Any:
    return {} if value is None else value


class ModelSpec(Section):
    """`actor.model`: the base model and how it is fine-tuned."""

    model_path: str = Field(
        min_length=1,
        description="HF-format model folder: an absolute path on the workers, or a bare name "
        "looked up in the workers' models directory (e.g. `demo-tiny-llama`).",
    )
    is_lora: bool = Field(False, description="true: LoRA fine-tuning; false: full fine-tuning.")
    lora_path: str | None = Field(
        None,
        min_length=1,
        description="Adapter to continue from (registry reference, checkpoint, or allowed "
        "worker-local folder); null starts a new adapter.",
    )
    lora_rank: int | None = Field(
        None,
        validate_default=True,
        description="Rank r of the LoRA A/B matrices (>= 1); ignored when is_lora is false.",
    )
    lora_alpha: int | float | None = Field(
        None, gt=0, description="LoRA scaling numerator; defaults to lora_rank."
    )
    lora_dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Dropout on the LoRA input.")
    target_modules: list[Annotated[str, Field(min_length=1)]] | None = Field(
        None,
        min_length=1,
        description="Module-name suffixes to wrap; defaults to RLinf's list.",
    )
    precision: Precision | None = Field(
        None,
        description="Training precision: for LoRA the frozen base weights are held in it (LoRA "
        "weights and AdamW state stay fp32); full fine-tuning keeps fp32 master weights and "
        "computes in it under autocast; fp16 uses a grad scaler. Honoured on CPU too. null: bf16 "
        "on a CUDA device that supports it, else fp32. "
        "`actor.fsdp_config.mixed_precision.param_dtype` wins when set.",
    )
    gradient_checkpointing: bool | None = Field(
        None,
        description="Activation checkpointing (recompute each layer in backward). On when this "
        "or `actor.fsdp_config.gradient_checkpointing` is true.",
    )

    @field_validator("lora_path")
    @classmethod
    def _lora_path_needs_lora(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("is_lora") is False:
            raise ValueError(
                "lora_path is set but is_lora is false: full fine-tuning cannot continue an "
                "adapter; set is_lora: true or remove lora_path"
            )
        return value

    @field_validator("lora_rank")
    @classmethod
    def _rank_rule(cls, value: int | None, info: ValidationInfo) -> int | None:
        if not info.data.get("is_lora"):
            return value
        if value is None:
            if info.data.get("lora_path") is None:
                raise ValueError("lora_rank is required when is_lora is true and lora_path is null")
            return None
        if value < 1:
            raise ValueError(f"lora_rank must be an integer >= 1, got {value}")
        return value

    @field_validator("target_modules")
    @classmethod
    def _unique_targets(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("target_modules lists a module name twice")
        return value


class MixedPrecisionSpec(Section):
    """`actor.fsdp_config.mixed_precision`: the dtypes of parameters, gradients and buffers."""

    param_dtype: Precision | None = Field(
        None,
        description="dtype the frozen base weights are held in (LoRA) or computed in (full "
        "fine-tuning, under autocast over fp32 master weights); wins over actor.model.precision.",
    )
    reduce_dtype: Precision | None = Field(
        None,
        description="dtype of the gradient reduction across devices; on one device gradients "
        "accumulate in fp32 whatever it says.",
    )
    buffer_dtype: Precision | None = Field(
        None, description="dtype floating-point buffers (e.g. rotary frequencies) are cast to."
    )

    _names = field_validator("param_dtype", "reduce_dtype", "buffer_dtype", mode="before")(
        classmethod(lambda cls, v: _dtype_name(v))
    )


ShardingStrategy = Literal["full_shard", "shard_grad_op", "no_shard"]


class FsdpConfigSpec(Section):
    """`actor.fsdp_config`: the memory settings of RLinf's FSDP config that loraplane applies."""

    gradient_checkpointing: bool | None = Field(
        None, description="Activation checkpointing; see actor.model.gradient_checkpointing."
    )
    sharding_strategy: ShardingStrategy = Field(
        "full_shard",
        description="How the actor's state is split over its devices (several devices only): "
        "`full_shard` shards parameters, gradients and optimizer state (FSDP2, parameters "
        "gathered again for backward), `shard_grad_op` keeps parameters gathered between "
        "forward and backward, `no_shard` replicates the model on every device (DDP).",
    )
    mixed_precision: MixedPrecisionSpec = Field(default_factory=MixedPrecisionSpec)

    _mixed_null = field_validator("mixed_precision", mode="before")(
        classmethod(lambda cls, v: _none_as_empty(v))
    )


class OptimSpec(Section):
    """`actor.optim`: AdamW and its learning-rate schedule."""

    lr: float = Field(1e-4, gt=0, description="Peak learning rate.")
    adam_beta1: float = Field(0.9, ge=0, lt=1)
    adam_beta2: float = Field(0.999, ge=0, lt=1)
    adam_eps: float = Field(1e-8, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    clip_grad: float | None = Field(1.0, description="Max gradient norm; null or <= 0: no clipping.")
    lr_scheduler: Literal["constant", "linear", "cosine"] = "constant"
    lr_warmup_steps: int = Field(0, ge=0)
    total_training_steps: int | None = Field(
        None, ge=1, description="Length of the lr schedule; defaults to the run's step count."
    )


class ActorSpec(Section):
    """`actor`: batch sizes, seed, model and optimizer."""

    micro_batch_size: int = Field(1, ge=1, description="Samples per forward/backward pass.")
    global_batch_size: int | None = Field(
        None, ge=1, description="Samples per optimizer step (a multiple of micro_batch_size)."
    )
    seed: int = 42
    model: ModelSpec
    optim: OptimSpec = Field(default_factory=OptimSpec)
    fsdp_config: FsdpConfigSpec = Field(default_factory=FsdpConfigSpec)

    _fsdp_null = field_validator("fsdp_config", mode="before")(
        classmethod(lambda cls, v: _none_as_empty(v))
    )

    @model_validator(mode="after")
    def _accumulation(self) -> ActorSpec:
        if self.global_batch_size is None:
            self.global_batch_size = self.micro_batch_size
        elif self.global_batch_size % self.micro_batch_size:
            raise ValueError(
                f"global_batch_size ({self.global_batch_size}) must be a multiple of "
                f"micro_batch_size ({self.micro_batch_size})"
            )
        return self

    @property
    def grad_accumulation(self) -> int:
        return (self.global_batch_size or self.micro_batch_size) // self.micro_batch_size


def _paths(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class DataSpec(Section):
    """`data`: supervised fine-tuning pairs."""

    type: Literal["llm"] = Field(
        "llm", description="`llm`: SFT of a causal LM on prompt/answer pairs or conversations."
    )
    train_data_paths: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=lambda: ["demo"],
        min_length=1,
        description="Dataset ids (`ds_...`), worker-local JSONL paths, or `demo` (the bundled set).",
    )
    val_data_paths: list[Annotated[str, Field(min_length=1)]] | None = None
    prompt_key: str = Field("prompt", min_length=1)
    answer_key: str = Field("answer", min_length=1)
    max_length: int = Field(1024, ge=8, description="Tokens per sample; longer ones are truncated.")
    max_samples: int = Field(-1, description="-1: all samples.")
    append_eos: bool = Field(
        True, description="End each answer with the tokenizer's eos (plain pairs; a chat "
        "template ends turns its own way)."
    )
    apply_chat_template: bool = Field(
        False,
        description="Wrap prompt/answer pairs in the base tokenizer's chat template (a user turn "
        "and an assistant turn); the loss is on the assistant part only.",
    )
    messages_key: str = Field(
        "messages",
        min_length=1,
        description="Rows holding this key are OpenAI-style conversations (a list of "
        "{role: system|user|assistant, content}), rendered with the chat template; the loss is "
        "on every assistant turn.",
    )
    group_by_length: bool = Field(
        True,
        description="Form each optimizer step's batch from samples of similar length (within "
        "groups of 50 steps' samples, deterministic for data.seed), so padding stays a small "
        "share of the tokens; false: plain shuffled order.",
    )
    shuffle: bool = True
    seed: int = 42

    _as_list = field_validator("train_data_paths", "val_data_paths", mode="before")(
        classmethod(lambda cls, v: _paths(v))
    )

    @field_validator("max_samples")
    @classmethod
    def _max_samples(cls, value: int) -> int:
        if value == 0 or value < -1:
            raise ValueError("max_samples must be -1 (all) or >= 1")
        return value


class RunnerSpec(Section):
    """`runner`: run length, checkpoints, naming."""

    experiment_name: NameStr | None = Field(None, description="Name the adapter is registered under.")
    max_epochs: int = Field(1, ge=1)
    max_steps: int = Field(-1, description="-1: max_epochs decides.")
    save_interval: int = Field(100, description="Optimizer steps between checkpoints; -1: none.")
    val_check_interval: int = Field(-1, description="Steps between validations; -1: none.")

    @field_validator("max_steps", "save_interval", "val_check_interval")
    @classmethod
    def _minus_one_or_positive(cls, value: int) -> int:
        if value == 0 or value < -1:
            raise ValueError("must be -1 (off) or >= 1")
        return value


MAX_PLACEMENT_DEVICE = 1023  # a device index beyond any node's


def placement_devices(value: str | int, where: str) -> int | None:
    """The number of devices a placement names: `all` → None (whatever the worker offers),
    `"0-3"` → 4, `"0,2"` → 2, `"0-3,6"` → 5, an int (one device index, as in RLinf) → 1."""
    if isinstance(value, bool):  # pydantic reports a ValueError, not a TypeError, as a 422
        raise ValueError(  # noqa: TRY004
            f"{where}: a placement is `all`, a device range like \"0-3\", a list like \"0,2\" "
            f"or a device index, got {value!r}")
    if isinstance(value, int):
        if not 0 <= value <= MAX_PLACEMENT_DEVICE:
            raise ValueError(f"{where}: device index {value} is out of range")
        return 1
    text = value.strip()
    if text == "all":
        return None
    indices: set[int] = set()
    for part in text.split(","):
        bounds = part.strip().split("-")
        if len(bounds) not in (1, 2) or not all(b.strip().isdigit() for b in bounds):
            raise ValueError(
                f"{where}: cannot read the placement {value!r}: write `all`, a device range "
                f"like \"0-3\", a list like \"0,2\", or a device index")
        low, high = int(bounds[0]), int(bounds[-1])
        if low > high or high > MAX_PLACEMENT_DEVICE:
            raise ValueError(f"{where}: the device range {part.strip()!r} in {value!r} is empty "
                             "or out of range")
        span = set(range(low, high + 1))
        if indices & span:
            raise ValueError(f"{where}: the placement {value!r} names a device twice")
        indices |= span
    return len(indices)


class ClusterSpec(Section):
    """`cluster`: where the job's components run. loraplane runs the actor (the model being
    trained) on one node, over the devices `component_placement.actor` asks for."""

    num_nodes: int = Field(
        1, ge=1, description="Nodes the job spans; only 1 is supported (multi-node training "
        "does not exist yet).")
    component_placement: dict[str, str | int] = Field(
        default_factory=dict,
        description="Devices per component (RLinf's form; keys may name several components, "
        "like `actor,rollout`). Only the actor's entry is used: `all` = every device of the "
        "worker that claims the job, `\"0-3\"` = 4 devices, `\"0,2\"` = 2, an int = one "
        "device. It says how many devices, not which: a worker runs the job on the first that "
        "many of those it offers. Missing: one device.",
    )

    _placement_null = field_validator("component_placement", mode="before")(
        classmethod(lambda cls, v: _none_as_empty(v))
    )

    @field_validator("num_nodes")
    @classmethod
    def _one_node(cls, value: int) -> int:
        if value > 1:
            raise ValueError(
                f"num_nodes is {value}, but a job runs on one node (the limit is num_nodes: 1) "
                "until multi-node training exists; use several devices of one node with "
                "component_placement.actor")
        return value

    @field_validator("component_placement")
    @classmethod
    def _placements(cls, value: dict[str, str | int]) -> dict[str, str | int]:
        actors = [key for key in value if "actor" in (k.strip() for k in key.split(","))]
        if len(actors) > 1:
            raise ValueError(f"the actor is placed twice ({', '.join(actors)})")
        for key, where in value.items():
            placement_devices(where, f"component_placement.{key}")
        return value

    @property
    def actor_devices(self) -> int | None:
        """Devices the actor needs: a count, or None for all the claiming worker offers."""
        for key, where in self.component_placement.items():
            if "actor" in (k.strip() for k in key.split(",")):
                return placement_devices(where, f"component_placement.{key}")
        return 1


class JobSpec(Section):
    """A training job: the RLinf sections loraplane acts on, plus queue options."""

    name: NameStr | None = Field(None, description="Job name; the adapter name falls back to it.")
    priority: int = Field(0, ge=-100, le=100, description="Higher runs first.")
    actor: ActorSpec
    data: DataSpec = Field(default_factory=DataSpec)
    runner: RunnerSpec = Field(default_factory=RunnerSpec)
    cluster: ClusterSpec = Field(default_factory=ClusterSpec)

    _cluster_null = field_validator("cluster", mode="before")(
        classmethod(lambda cls, v: _none_as_empty(v))
    )

"""The job spec: an RLinf-style config, parsed safely and validated strictly.

A spec arrives as JSON or YAML. Parsing guards against hostile documents (size, depth,
alias bombs, duplicate keys, values JSON cannot hold); OmegaConf then resolves `${...}`
interpolations in the sections the service uses; pydantic models with strict types and
`extra="forbid"` validate them. Keys RLinf knows but the service does not use are
accepted and reported back as `ignored_keys`.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from service.errors import InvalidSpec, PayloadTooLarge, UnsupportedMediaType

# A spec must never read the server's environment (tokens, database passwords).
if OmegaConf.has_resolver("oc.env"):
    OmegaConf.clear_resolver("oc.env")

JSON_TYPES = frozenset({"application/json"})
YAML_TYPES = frozenset({"application/yaml", "application/x-yaml", "text/yaml"})
MAX_DEPTH = 32
MAX_NODES = 100_000

# RLinf's default LoRA target list: module-name suffixes, matched as peft matches them.
DEFAULT_TARGET_MODULES: tuple[str, ...] = (
    "proj", "qkv", "fc1", "fc2", "q", "kv", "fc3",
    "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "lm_head",
)  # fmt: skip

# Keys RLinf configs carry in the sections loraplane uses, which loraplane does not act on.
# They are accepted and listed in `ignored_keys`; any other unknown key there is a typo.
RLINF_IGNORED_KEYS: dict[str, frozenset[str]] = {
    "actor": frozenset({
        "group_name", "training_backend", "mcore_gpu", "enable_offload", "eval_batch_size",
        "checkpoint_load_path", "checkpoint_save_path", "fsdp_config", "megatron", "tokenizer",
        "seq_length", "offload_optimizer", "offload_weight", "offload_grad",
        "enable_dp_load_balance", "calculate_flops", "calculate_entropy", "entropy_op_type",
        "use_dynamic_batch_size", "max_tokens_per_mbs", "sync_weight_no_wait",
        "recompute_logprobs", "component_placement", "channel", "micro_batch_size_per_gpu",
    }),
    "actor.model": frozenset({
        "model_type", "sharding_strategy", "add_value_head", "vocab_size", "hidden_size",
        "num_action_chunks", "action_dim", "policy_setup", "use_proprio", "unnorm_key",
        "num_steps", "attn_implementation", "gradient_checkpointing", "tokenizer_path",
        "header", "value_type", "use_fast_tokenizer", "trust_remote_code", "use_liger_kernel",
    }),
    "actor.optim": frozenset({
        "optimizer", "lr_decay_style", "min_lr", "min_lr_rate", "lr_warmup_fraction",
        "lr_warmup_init", "value_lr", "warmup_style", "num_cycles", "use_distributed_optimizer",
        "overlap_grad_reduce", "overlap_param_gather", "loss_scale", "initial_loss_scale",
        "bf16", "fp16",
    }),
    "data": frozenset({
        "num_workers", "max_prompt_length", "filter_prompt_by_length", "rollout_batch_size",
        "val_rollout_batch_size", "dataset_name", "apply_chat_template", "chat_template",
        "tokenizer", "image_keys", "choice_key", "solution_key", "lazy_loading",
    }),
    "runner": frozenset({
        "task_type", "logger", "output_dir", "resume_dir", "seq_length",
        "enable_dynamic_batch_size", "max_tokens_per_mbs", "only_eval", "weight_sync_interval",
        "ckpt_path", "max_prompt_length", "per_worker_log",
    }),
}
USED_SECTIONS = ("actor", "data", "runner")
TOP_LEVEL_KEYS = ("actor", "data", "runner", "name", "priority")

NameStr = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, validate_default=False)


class ModelSpec(_Section):
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
    precision: Literal["fp32", "bf16", "fp16"] = Field(
        "bf16", description="Autocast precision on CUDA; CPU training always runs in fp32."
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


class OptimSpec(_Section):
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


class ActorSpec(_Section):
    """`actor`: batch sizes, seed, model and optimizer."""

    micro_batch_size: int = Field(1, ge=1, description="Samples per forward/backward pass.")
    global_batch_size: int | None = Field(
        None, ge=1, description="Samples per optimizer step (a multiple of micro_batch_size)."
    )
    seed: int = 42
    model: ModelSpec
    optim: OptimSpec = Field(default_factory=OptimSpec)

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


class DataSpec(_Section):
    """`data`: supervised fine-tuning pairs."""

    type: Literal["llm"] = Field("llm", description="`llm`: SFT of a causal LM on prompt/answer pairs.")
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
    append_eos: bool = True
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


class RunnerSpec(_Section):
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


class JobSpec(_Section):
    """A training job: the RLinf sections loraplane acts on, plus queue options."""

    name: NameStr | None = Field(None, description="Job name; the adapter name falls back to it.")
    priority: int = Field(0, ge=-100, le=100, description="Higher runs first.")
    actor: ActorSpec
    data: DataSpec = Field(default_factory=DataSpec)
    runner: RunnerSpec = Field(default_factory=RunnerSpec)


@dataclass(frozen=True)
class ParsedSpec:
    spec: JobSpec
    ignored_keys: list[str]


# ---------------------------------------------------------------------------- parsing


class _SafeYamlLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys, reads `1e-5` as a float, leaves dates as text."""


_SafeYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_SafeYamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _construct_mapping(loader: _SafeYamlLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    result: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if not isinstance(key, str):
            raise InvalidSpec(f"YAML key {key!r} (line {key_node.start_mark.line + 1}) is not a string")
        if key in result:
            raise InvalidSpec(f"YAML key {key!r} appears twice (line {key_node.start_mark.line + 1})")
        result[key] = loader.construct_object(value_node, deep=deep)
    return result


_SafeYamlLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """Node count with every alias expanded, computed without expanding anything."""
    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = 1  # a recursive alias counts once; the constructor rejects cycles' depth below
    if isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(child, memo) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    else:
        size = 1
    memo[key] = min(size, MAX_NODES + 1)
    return memo[key]


def _load_yaml(text: str) -> Any:
    loader = _SafeYamlLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node, {}) > MAX_NODES:
            raise InvalidSpec(
                f"YAML document expands to more than {MAX_NODES} nodes (alias bomb?); refused"
            )
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise InvalidSpec(f"invalid YAML: {exc}") from None
    except RecursionError:
        raise InvalidSpec(f"document nests deeper than {MAX_DEPTH} levels") from None
    finally:
        loader.dispose()


def _load_json(text: str) -> Any:
    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                raise InvalidSpec(f"JSON key {key!r} appears twice")
            result[key] = value
        return result

    def no_constant(name: str) -> Any:
        raise InvalidSpec(f"JSON value {name} is not allowed")

    try:
        return json.loads(text, object_pairs_hook=no_duplicates, parse_constant=no_constant)
    except json.JSONDecodeError as exc:
        raise InvalidSpec(f"invalid JSON: {exc}") from None
    except RecursionError:
        raise InvalidSpec(f"document nests deeper than {MAX_DEPTH} levels") from None


def _check_plain(value: Any, path: str = "", depth: int = 0) -> None:
    """Only JSON-representable values, nested at most MAX_DEPTH deep."""
    if depth > MAX_DEPTH:
        raise InvalidSpec(f"document nests deeper than {MAX_DEPTH} levels (at {path or 'top'})")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_plain(item, f"{path}.{key}" if path else key, depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_plain(item, f"{path}[{index}]", depth + 1)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidSpec(f"{path}: {value} is not a finite number")
    elif not (value is None or isinstance(value, (str, int, bool))):
        raise InvalidSpec(f"{path}: values of type {type(value).__name__} are not allowed")


def load_document(body: bytes, content_type: str | None, max_bytes: int) -> dict[str, Any]:
    """Decode a spec body into a plain dict, refusing anything hostile or malformed."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media not in JSON_TYPES | YAML_TYPES:
        raise UnsupportedMediaType(
            f"Content-Type {media or '(none)'!r} is not accepted; send the spec as "
            "application/json or application/yaml"
        )
    if len(body) > max_bytes:
        raise PayloadTooLarge(f"spec body is {len(body)} bytes; the limit is {max_bytes} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidSpec("spec body is not valid UTF-8") from None
    document = _load_json(text) if media in JSON_TYPES else _load_yaml(text)
    if not isinstance(document, dict):
        kind = "empty" if document is None else f"a {type(document).__name__}"
        raise InvalidSpec(f"a spec must be a mapping at the top level, got {kind}")
    _check_plain(document)
    return document


def _resolve(document: dict[str, Any]) -> dict[str, Any]:
    """Resolve `${...}` interpolations inside the used sections (others are left alone)."""
    try:
        config = OmegaConf.create(document)
        return {
            key: (
                OmegaConf.to_container(config[key], resolve=True)
                if key in USED_SECTIONS and OmegaConf.is_config(config[key])
                else document[key]
            )
            for key in document
        }
    except OmegaConfBaseException as exc:
        message = str(exc).splitlines()[0]
        raise InvalidSpec(f"cannot resolve interpolation: {message}") from None


def _model_fields(model: type[BaseModel]) -> dict[str, type[BaseModel] | None]:
    """Field name -> nested section model (or None for a leaf)."""
    out: dict[str, type[BaseModel] | None] = {}
    for name, info in model.model_fields.items():
        ann = info.annotation
        out[name] = ann if isinstance(ann, type) and issubclass(ann, _Section) else None
    return out


def _split_known(
    section: dict[str, Any], model: type[BaseModel], path: str, ignored: list[str], errors: list
) -> dict[str, Any]:
    """Keep the keys the model knows; move RLinf's other keys to `ignored`; flag typos."""
    fields = _model_fields(model)
    rlinf = RLINF_IGNORED_KEYS.get(path, frozenset())
    kept: dict[str, Any] = {}
    for key, value in section.items():
        where = f"{path}.{key}"
        if key in fields:
            sub = fields[key]
            if sub is not None and isinstance(value, dict):
                value = _split_known(value, sub, where, ignored, errors)
            kept[key] = value
        elif key in rlinf:
            ignored.append(where)
        else:
            close = difflib.get_close_matches(key, list(fields) + sorted(rlinf), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            errors.append({"loc": where, "msg": f"unknown key {key!r} in {path}{hint}",
                           "type": "unknown_key"})
    return kept


def _message(err: Any) -> str:
    """Pydantic's message, naming the offending value for type errors (types are strict)."""
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"].endswith("_type") or err["type"] in {"literal_error", "enum"}:
        value = err.get("input")
        msg += f" (got {type(value).__name__} {value!r}; types are strict)"
    return msg


def parse_spec(document: dict[str, Any]) -> ParsedSpec:
    """Validate a decoded spec document against the contract of design §1–§2."""
    ignored: list[str] = []
    errors: list[dict[str, Any]] = []
    resolved = _resolve(document)
    kept: dict[str, Any] = {}
    for key, value in resolved.items():
        if key in TOP_LEVEL_KEYS:
            section = _model_fields(JobSpec)[key]
            if section is not None and isinstance(value, dict):
                value = _split_known(value, section, key, ignored, errors)
            kept[key] = value
            continue
        close = difflib.get_close_matches(key, TOP_LEVEL_KEYS, n=1, cutoff=0.8)
        if close and close[0] not in resolved:
            errors.append({"loc": key, "msg": f"unknown top-level key {key!r}; did you mean "
                           f"{close[0]!r}?", "type": "unknown_key"})
        else:
            ignored.append(key)
    if errors:
        raise InvalidSpec(errors[0]["msg"], errors=errors)
    try:
        spec = JobSpec.model_validate(kept)
    except ValidationError as exc:
        field_errors = [
            {
                "loc": ".".join(str(p) for p in err["loc"]),
                "msg": _message(err),
                "type": err["type"],
            }
            for err in exc.errors(include_url=False)
        ]
        first = field_errors[0]
        raise InvalidSpec(f"{first['loc']}: {first['msg']}", errors=field_errors) from None
    return ParsedSpec(spec=spec, ignored_keys=sorted(ignored))


def parse_body(body: bytes, content_type: str | None, max_bytes: int) -> ParsedSpec:
    """Decode and validate a spec body in one step."""
    return parse_spec(load_document(body, content_type, max_bytes))

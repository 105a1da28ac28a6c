"""Loading the base model, attaching or loading LoRA adapters, and writing adapter folders."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from peft import LoraConfig, PeftModel, get_peft_model, get_peft_model_state_dict
from peft.tuners.tuners_utils import check_target_module_exists
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel
from transformers.pytorch_utils import Conv1D
from transformers.utils import logging as hf_logging

from worker.trainer.adapter_config import portable_adapter_config
from worker.trainer.errors import UserError
from worker.trainer.files import ADAPTER_CONFIG, ADAPTER_WEIGHTS

if TYPE_CHECKING:
    from loraplane_client.models import ModelSpec

logger = logging.getLogger(__name__)

# RLinf's default LoRA target list: module-name suffixes, matched as peft matches them.
DEFAULT_TARGET_MODULES: tuple[str, ...] = (
    "proj", "qkv", "fc1", "fc2", "q", "kv", "fc3",
    "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "lm_head",
)  # fmt: skip
# Keys of a peft LoRA state dict (adapter name stripped), e.g.
# `base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight`.
LORA_KEY = re.compile(r"\.lora_(A|B)\.weight$|\.lora_embedding_(A|B)$")
# Sub-module names peft inserts under a wrapped layer.
_PEFT_PARTS = frozenset(
    {
        "base_layer",
        "lora_A",
        "lora_B",
        "lora_dropout",
        "lora_embedding_A",
        "lora_embedding_B",
        "lora_magnitude_vector",
    }
)


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """No tqdm bars from transformers while loading or saving (they would flood worker logs)."""
    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


@contextlib.contextmanager
def _peft_quiet() -> Iterator[None]:
    """Hide transformers' deprecation notices that peft triggers; they mean nothing to users."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        yield


def load_tokenizer(model_dir: Path) -> Any:
    """The tokenizer saved with the model, offline."""
    try:
        with _quiet_transformers():
            return AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(
            f"cannot load the tokenizer of {model_dir}: {exc}", code="invalid_model"
        ) from exc


def load_causal_lm(model_dir: Path, dtype: torch.dtype = torch.float32) -> PreTrainedModel:
    """A causal LM in `dtype` from safetensors only (never a pickle), offline."""
    try:
        with _quiet_transformers():
            model = AutoModelForCausalLM.from_pretrained(
                str(model_dir), local_files_only=True, use_safetensors=True, dtype=dtype
            )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(
            f"cannot load the model in {model_dir}: {exc}", code="invalid_model"
        ) from exc
    return model


def _plain_modules(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """Named modules of the underlying transformers model, without peft's inserted sub-modules."""
    if isinstance(model, PeftModel):
        model = model.get_base_model()
    for name, module in model.named_modules():
        if name and not _PEFT_PARTS.intersection(name.split(".")):
            yield name, module


def _is_linear(module: nn.Module) -> bool:
    return isinstance(module, (nn.Linear, Conv1D)) or (
        hasattr(module, "base_layer") and isinstance(module.base_layer, (nn.Linear, Conv1D))
    )


def linear_module_names(model: nn.Module) -> list[str]:
    """Sorted unique leaf names of the model's linear layers (what target_modules can name)."""
    return sorted(
        {name.rsplit(".", 1)[-1] for name, module in _plain_modules(model) if _is_linear(module)}
    )


def _shape(module: nn.Module) -> tuple[int, int] | None:
    """(in, out) of a layer LoRA can wrap, None for anything else."""
    if isinstance(module, nn.Linear):
        return module.in_features, module.out_features
    if isinstance(module, Conv1D):
        return module.weight.shape[0], module.weight.shape[1]
    if isinstance(module, nn.Embedding):
        return module.num_embeddings, module.embedding_dim
    return None


def check_lora_targets(model: nn.Module, config: LoraConfig) -> list[str]:
    """Names of the modules the config will wrap; a UserError when none, or a rank too large."""
    matched = [
        (name, module)
        for name, module in _plain_modules(model)
        if check_target_module_exists(config, name)
    ]
    if not matched:
        raise UserError(
            f"no module of the model matches target_modules {sorted(config.target_modules)}; "
            f"the model's linear modules are: {', '.join(linear_module_names(model))}",
            code="no_matching_modules",
        )
    unsupported = [
        f"{name} ({type(module).__name__})" for name, module in matched if _shape(module) is None
    ]
    if unsupported:
        raise UserError(
            f"target_modules match modules LoRA cannot wrap: {', '.join(unsupported[:5])}; "
            f"name linear layers instead: {', '.join(linear_module_names(model))}",
            code="unsupported_target_module",
        )
    for name, module in matched:
        d_in, d_out = _shape(module)  # type: ignore[misc]
        if config.r > min(d_in, d_out):
            raise UserError(
                f"lora_rank {config.r} is larger than min(in, out) = {min(d_in, d_out)} of layer "
                f"{name} ({type(module).__name__} {d_in}x{d_out}); use a rank <= "
                f"{min(d_in, d_out)} or leave that module out of target_modules",
                code="rank_too_large",
            )
    return [name for name, _ in matched]


def attach_new_lora(
    model: PreTrainedModel,
    *,
    rank: int,
    alpha: float,
    dropout: float,
    target_modules: Iterable[str],
) -> PeftModel:
    """Wrap the base with a fresh Gaussian-initialised LoRA adapter; only LoRA params train."""
    config = LoraConfig(
        r=rank,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=list(target_modules),
        init_lora_weights="gaussian",
        task_type="CAUSAL_LM",
    )
    check_lora_targets(model, config)
    try:
        with _peft_quiet():
            peft_model = get_peft_model(model, config)
    except ValueError as exc:  # peft's NoMatchingPeftModuleError and friends
        raise UserError(
            f"cannot apply LoRA: {exc}; the model's linear modules are: "
            f"{', '.join(linear_module_names(model))}",
            code="no_matching_modules",
        ) from exc
    return peft_model


def adapter_tensor_names(adapter_dir: Path) -> list[str]:
    """Validate a peft LoRA folder (config + safetensors, LoRA tensors only); its tensor names."""
    adapter_dir = Path(adapter_dir)
    config_path, weights_path = adapter_dir / ADAPTER_CONFIG, adapter_dir / ADAPTER_WEIGHTS
    if not adapter_dir.is_dir() or not config_path.is_file() or not weights_path.is_file():
        present = sorted(p.name for p in adapter_dir.iterdir()) if adapter_dir.is_dir() else []
        raise UserError(
            f"adapter folder {adapter_dir} must hold {ADAPTER_CONFIG} and {ADAPTER_WEIGHTS} "
            f"(pickle formats are not accepted); it holds {present}",
            code="invalid_adapter",
        )
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(
            f"{ADAPTER_CONFIG} is not valid JSON: {exc}", code="invalid_adapter"
        ) from exc
    if not isinstance(config, dict) or config.get("peft_type") != "LORA":
        raise UserError(
            f"{ADAPTER_CONFIG} does not describe a LoRA adapter", code="invalid_adapter"
        )
    try:
        with safe_open(str(weights_path), framework="pt") as handle:
            names = list(handle.keys())
    except Exception as exc:  # safetensors raises its own error type for corrupt headers
        raise UserError(
            f"{ADAPTER_WEIGHTS} is not a valid safetensors file: {exc}", code="invalid_adapter"
        ) from exc
    foreign = [name for name in names if not LORA_KEY.search(name)]
    if foreign:
        raise UserError(
            f"{ADAPTER_WEIGHTS} holds tensors that are not LoRA weights (e.g. {foreign[:3]}); "
            "adapters must not carry copies of base weights",
            code="invalid_adapter",
        )
    return names


def load_lora(model: PreTrainedModel, adapter_dir: Path) -> PeftModel:
    """Load a peft LoRA folder onto the base, trainable, keeping the adapter's own config."""
    names = adapter_tensor_names(adapter_dir)
    try:
        with _peft_quiet():
            peft_model = PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=True)
    except torch.OutOfMemoryError:
        raise
    except (ValueError, RuntimeError, KeyError, TypeError, OSError) as exc:
        raise UserError(
            f"cannot load adapter {adapter_dir} onto the base model: {exc}", code="invalid_adapter"
        ) from exc
    expected = set(lora_state_dict(peft_model))
    if expected != set(names):
        missing, extra = sorted(expected - set(names)), sorted(set(names) - expected)
        raise UserError(
            f"adapter {adapter_dir} does not fit the base model: missing {missing[:3]}, "
            f"unexpected {extra[:3]}",
            code="invalid_adapter",
        )
    return peft_model


def wrapped_module_names(model: PeftModel) -> list[str]:
    """Full names (in the base model) of the modules carrying a LoRA layer."""
    return [name for name, module in _plain_modules(model) if hasattr(module, "lora_A")]


def wrapped_leaf_names(model: PeftModel) -> list[str]:
    """Sorted unique leaf names of the modules carrying a LoRA layer (e.g. `q_proj`)."""
    return sorted({name.rsplit(".", 1)[-1] for name in wrapped_module_names(model)})


def lora_state_dict(model: PeftModel,
                    state_dict: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """The adapter's LoRA tensors only (never embedding or head copies); from `state_dict`
    (the model's gathered weights, in a sharded run) when given."""
    state = get_peft_model_state_dict(model, state_dict=state_dict, save_embedding_layers=False)
    foreign = [name for name in state if not LORA_KEY.search(name)]
    if foreign:
        raise RuntimeError(f"peft state dict holds non-LoRA tensors: {foreign[:3]}")
    return state


def _saved_targets(model: PeftModel, wrapped: list[str]) -> list[str]:
    """Leaf names if, suffix-matched, they wrap exactly the same modules; else full names."""
    leaves = sorted({name.rsplit(".", 1)[-1] for name in wrapped})
    names = [name for name, _ in _plain_modules(model)]
    reach = {n for n in names if any(n == leaf or n.endswith("." + leaf) for leaf in leaves)}
    return leaves if reach == set(wrapped) else sorted(wrapped)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "value") and isinstance(value, str):  # str enums (PeftType, TaskType)
        return value.value
    return value


def write_adapter(model: PeftModel, directory: Path, base_model_name: str,
                  state_dict: dict[str, torch.Tensor] | None = None) -> None:
    """Write exactly adapter_config.json (portable: `adapter_config.py`) +
    adapter_model.safetensors (LoRA tensors only); `state_dict`: the gathered weights of a
    sharded model."""
    directory.mkdir(parents=True, exist_ok=True)
    state = {
        name: tensor.detach().to("cpu").contiguous().clone()
        for name, tensor in lora_state_dict(model, state_dict).items()
    }
    save_file(state, str(directory / ADAPTER_WEIGHTS), metadata={"format": "pt"})
    config = _jsonable(model.peft_config["default"].to_dict())
    config["base_model_name_or_path"] = base_model_name
    config["target_modules"] = _saved_targets(model, wrapped_module_names(model))
    config["inference_mode"] = True
    config = portable_adapter_config(config, _jsonable(LoraConfig().to_dict()))
    (directory / ADAPTER_CONFIG).write_text(
        json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )


def write_full_model(model: PreTrainedModel, tokenizer: Any, directory: Path,
                     state_dict: dict[str, torch.Tensor] | None = None) -> None:
    """A loadable HF folder: safetensors weights, config, tokenizer; `state_dict`: the
    gathered weights of a sharded model."""
    directory.mkdir(parents=True, exist_ok=True)
    with _quiet_transformers():
        model.save_pretrained(str(directory), state_dict=state_dict)
        tokenizer.save_pretrained(str(directory))
    if not any(directory.glob("*.safetensors")):
        raise RuntimeError(f"save_pretrained wrote no safetensors file into {directory}")
    for pickled in directory.glob("*.bin"):
        raise RuntimeError(f"save_pretrained wrote a pickle file {pickled}")


def _trainable_in_fp32(model: nn.Module) -> nn.Module:
    """Trainable weights (LoRA, or a full model's masters) in fp32, whatever the base dtype."""
    for param in model.parameters():
        if param.requires_grad and param.dtype != torch.float32:
            param.data = param.data.float()
    return model


def enable_gradient_checkpointing(model: nn.Module) -> None:
    """Recompute each decoder layer in backward (non-reentrant, so dropout RNG is replayed).

    A LoRA model's embeddings are frozen: their output is made to require grad, so the
    checkpointed layers see an input that requires grad, as peft needs."""
    base = model.get_base_model() if isinstance(model, PeftModel) else model
    if not getattr(base, "supports_gradient_checkpointing", False):
        raise UserError(
            f"{type(base).__name__} does not support gradient checkpointing; set "
            "actor.fsdp_config.gradient_checkpointing and actor.model.gradient_checkpointing "
            "to false",
            code="invalid_spec",
        )
    kwargs = {"use_reentrant": False}
    if hasattr(base, "activation_checkpointing_enable"):  # transformers >= 5.x's name
        base.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        base.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    if isinstance(model, PeftModel):
        base.enable_input_require_grads()


def build_model(
    model_spec: ModelSpec,
    *,
    base_model_dir: Path,
    init_adapter_dir: Path | None,
    resume_dir: Path | None,
    note: Callable[[str], None],
    base_dtype: torch.dtype = torch.float32,
) -> nn.Module:
    """The model a run trains: the full model, a new LoRA adapter on the base, or the adapter
    to continue (`resume_dir`, a checkpoint of this job, wins over `init_adapter_dir`).

    LoRA: the base is loaded in `base_dtype`, the LoRA weights are fp32. Full fine-tuning
    always loads fp32 master weights."""
    if not model_spec.is_lora:
        if init_adapter_dir is not None:
            raise UserError("an adapter to continue from needs is_lora: true", code="invalid_spec")
        model = load_causal_lm(resume_dir or base_model_dir)
        model.requires_grad_(True)
        return model
    base = load_causal_lm(base_model_dir, base_dtype)
    source = resume_dir or init_adapter_dir
    if source is not None:
        model = load_lora(base, source)
        config = model.peft_config["default"]
        if resume_dir is None and model_spec.lora_rank not in (None, config.r):
            note(
                f"continuing adapter keeps its own rank {config.r} "
                f"(spec said {model_spec.lora_rank})"
            )
        return _trainable_in_fp32(model)
    if model_spec.lora_rank is None:
        raise UserError("lora_rank is required to start a new adapter", code="invalid_spec")
    rank = model_spec.lora_rank
    return _trainable_in_fp32(
        attach_new_lora(
            base,
            rank=rank,
            alpha=model_spec.lora_alpha if model_spec.lora_alpha is not None else rank,
            dropout=model_spec.lora_dropout,
            target_modules=model_spec.target_modules or DEFAULT_TARGET_MODULES,
        )
    )

"""Job specs for tests and benchmarks, one copy of each shape.

Importable without the server's dependencies (no database, no web framework): the trainer
tests and bench/gpu_train.py use it on GPU machines that hold only the trainer's packages
(tests/worker/trainer/test_gpu_deps.py checks). Server-side factories are in
tests/factories.py.
"""

from __future__ import annotations

from typing import Any

from loraplane_client.models import JobSpec as WorkerJobSpec

from service.spec import JobSpec

BASE_MODEL = "demo-tiny-llama"

_TINY_YAML = """\
actor:
  model:
    model_path: {model}
    is_lora: true
    lora_rank: 4
  optim:
    lr: 0.01
  micro_batch_size: 4
  global_batch_size: 8
data:
  train_data_paths: {data}
runner:
  experiment_name: {name}
  max_steps: {steps}
  save_interval: {save_interval}
"""


def model_spec(**model: Any) -> dict[str, Any]:
    """The smallest valid spec: a rank-4 LoRA of the demo model (`model` keys override)."""
    return {"actor": {"model": {"model_path": BASE_MODEL, "is_lora": True, "lora_rank": 4,
                                **model}}}


def tiny_spec(name: str = "tiny", *, max_steps: int = 6, save_interval: int = 3,
              lr: float = 0.01, **model: Any) -> dict[str, Any]:
    """A job that trains the demo model in seconds on a CPU (`model` keys override; a key
    given as None is sent as null)."""
    spec = model_spec(**model)
    spec["actor"].update(optim={"lr": lr}, micro_batch_size=4, global_batch_size=8)
    spec["runner"] = {"max_steps": max_steps, "save_interval": save_interval,
                      "experiment_name": name}
    return spec


def tiny_spec_yaml(name: str = "tiny", *, model: str = BASE_MODEL, data: str = "demo",
                   steps: int = 6, save_interval: int = 3) -> str:
    """`tiny_spec` as the YAML a person writes (what the CLI and SDK submit)."""
    return _TINY_YAML.format(model=model, data=data, name=name, steps=steps,
                             save_interval=save_interval)


def worker_spec(document: dict[str, Any]) -> WorkerJobSpec:
    """A spec as a worker receives it: validated and completed by the server, then parsed
    by the SDK (the trainer's input type)."""
    validated = JobSpec.model_validate(document)
    return WorkerJobSpec.from_dict(validated.model_dump(mode="json"))

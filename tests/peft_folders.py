"""PEFT folders as other tools write them (peft's own save_pretrained on a tiny Llama built
from a config), archives of them, and a second installation to move them to."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.settings import Settings
from tests.conftest import _truncate, authenticate_as_admin

BASE = "demo-tiny-llama"
RANK = 4
PEFT_PAIR = ("adapter_config.json", "adapter_model.safetensors")


def tiny_base(seed: int = 0):
    """A Llama of a few thousand parameters, the same for a seed."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64,
                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2)
    return LlamaForCausalLM(config)


def save_peft_adapter(folder: Path, *, rank: int = RANK, seed: int = 0) -> Path:
    """`peft.get_peft_model(...).save_pretrained(folder)`: config, safetensors and a README."""
    import torch
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(tiny_base(), LoraConfig(
        r=rank, lora_alpha=2 * rank, target_modules=["q_proj", "v_proj"],
        init_lora_weights="gaussian"))
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_" in name:
                param.normal_()
    model.save_pretrained(folder)
    return folder


def pair(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in PEFT_PAIR}


def tar_bytes(files: dict[str, bytes], *, links: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return buffer.getvalue()


def untar(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}


def import_tar(client: TestClient, files: dict[str, bytes], name: str = "imported",
               base_model: str = BASE, **params: str):
    return client.post("/adapters", params={"name": name, "base_model": base_model, **params},
                       content=tar_bytes(files), headers={"Content-Type": "application/x-tar"})


def with_config(files: dict[str, bytes], **changes) -> dict[str, bytes]:
    config = json.loads(files["adapter_config.json"])
    config.update(changes)
    return {**files, "adapter_config.json": json.dumps(config).encode()}


def blob_count(settings: Settings) -> int:
    return sum(1 for p in (settings.artifacts_dir / "blobs").glob("??/*") if p.is_file())


@pytest.fixture(scope="module")
def peft_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_peft_adapter(tmp_path_factory.mktemp("peft") / "adapter")


@pytest.fixture
def other_settings(settings: Settings, tmp_path: Path,
                   request: pytest.FixtureRequest) -> Settings:
    """A second installation on the other engine: its own database and artifact store."""
    if settings.database_url.startswith("sqlite"):
        url = request.getfixturevalue("pg_database")
        _truncate(url)
    else:
        url = f"sqlite:///{tmp_path / 'other' / 'loraplane.db'}"
    return Settings(data_dir=tmp_path / "other", database_url=url)


@pytest.fixture
def other_client(other_settings: Settings) -> Iterator[TestClient]:
    from api.app import create_app

    with TestClient(create_app(other_settings)) as test_client:
        authenticate_as_admin(test_client, other_settings)
        yield test_client

"""Shared factories for server tests: stored files, job rows, adapters and checkpoints made as
the worker protocol would make them, a job claimed by hand (`Holder`), tokens and callers, an
in-process worker.

One copy of each, for every test module (and benchmark) that needs one. Specs are in
tests/specs.py, which imports none of the server's dependencies.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Callable
from typing import Any, Protocol

import httpx
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from db import models
from service import auth
from service import jobs as job_service
from service.artifacts import ArtifactStore
from service.lora_path import ResolvedLora
from service.registry.checkpoints import record_checkpoint
from service.registry.register import register_adapter
from service.schemas import Adapter, AdapterResult, Checkpoint, FileRef, JobState
from service.settings import Settings
from service.spec import parse_spec
from tests.specs import BASE_MODEL

BASE = BASE_MODEL
SERVER = "http://testserver"


# ---------------------------------------------------------------------------- by hand


class Holder:
    """A job claimed by hand over the worker protocol, for offering files as its worker would."""

    def __init__(self, client: TestClient, job: dict):
        self.client, self.job = client, job
        claim = client.post("/worker/claim", json={"worker_id": "hostile", "wait_seconds": 0})
        assert claim.status_code == 200 and claim.json()["job"]["id"] == job["id"], claim.text
        self.lease = {"X-Loraplane-Lease": claim.json()["lease_id"]}

    def offer(self, data: bytes) -> httpx.Response:
        """Upload `data` as a blob of the job; the server's answer, whatever it is."""
        sha = hashlib.sha256(data).hexdigest()
        return self.client.put(f"/worker/jobs/{self.job['id']}/blobs/{sha}", content=data,
                               headers=self.lease)

    def put(self, name: str, data: bytes) -> dict:
        stored = self.offer(data)
        assert stored.status_code == 201, stored.text
        return {"name": name, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}

    def complete(self, files: list[dict], **extra) -> httpx.Response:
        return self.client.post(f"/worker/jobs/{self.job['id']}/complete", headers=self.lease,
                                json={"kind": "lora", "files": files, **extra})

    def checkpoint(self, files: list[dict]) -> httpx.Response:
        return self.client.post(f"/worker/jobs/{self.job['id']}/checkpoints", headers=self.lease,
                                json={"step": 2, "files": files})


# ---------------------------------------------------------------------------- stored files


def safetensors_bytes(floats: int = 2, seed: int = 0) -> bytes:
    """A valid safetensors file with one F32 tensor of `floats` pseudo-random values."""
    data = hashlib.shake_256(f"weights-{seed}".encode()).digest(4 * floats)
    header = json.dumps({"w": {"dtype": "F32", "shape": [floats], "data_offsets": [0, len(data)]}})
    raw = header.encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + data


def put(store: ArtifactStore, name: str, data: bytes) -> FileRef:
    """Store `data` as a blob and name it as a result or checkpoint file."""
    blob = store.put_bytes(data)
    return FileRef(name=name, sha256=blob.sha256, size=blob.size)


def lora_files(store: ArtifactStore, *, rank: int = 8, seed: int = 0, floats: int = 4096,
               config: dict[str, Any] | None = None) -> list[FileRef]:
    """A PEFT LoRA folder's two files, stored: adapter_config.json and the weights."""
    cfg = config or {"peft_type": "LORA", "r": rank, "lora_alpha": rank,
                     "target_modules": ["q_proj", "v_proj"]}
    return [
        put(store, "adapter_config.json", json.dumps(cfg, sort_keys=True).encode()),
        put(store, "adapter_model.safetensors", safetensors_bytes(floats, seed)),
    ]


def checkpoint_files(store: ArtifactStore, step: int, *, lora: bool = True) -> list[FileRef]:
    """A checkpoint's files as the trainer writes them: trainer state, optimiser, and the
    adapter (`adapter/…`) or, for full fine-tuning, the model (`model/…`)."""
    state = put(store, "trainer_state.json", json.dumps({"step": step}).encode())
    optim = put(store, "optimizer.safetensors", safetensors_bytes(64, 1000 + step))
    if not lora:
        return [state, optim, put(store, "model/config.json", b"{}"),
                put(store, "model/model.safetensors", safetensors_bytes(64, 2000 + step))]
    adapter = [FileRef(name=f"adapter/{f.name}", sha256=f.sha256, size=f.size)
               for f in lora_files(store, seed=step)]
    return [state, optim, *adapter]


# ---------------------------------------------------------------------------- rows


class Stores(Protocol):
    """What the row factories need of a server: sessions and its artifact store (an
    api.deps.AppState has both)."""

    store: ArtifactStore

    def sessions(self) -> Session: ...


def make_job(session: Session, *, name: str | None = "bot", model_path: str = BASE,
             is_lora: bool = True, rank: int | None = 8, parent: str | None = None,
             state: JobState = JobState.succeeded) -> models.Job:
    """A job row as the queue leaves it (default: succeeded, not yet registered); with a
    `parent`, one that continued from that adapter."""
    model: dict[str, Any] = {"model_path": model_path, "is_lora": is_lora}
    if is_lora and rank is not None:
        model["lora_rank"] = rank
    if parent is not None:
        model["lora_path"] = parent
    document: dict[str, Any] = {"actor": {"model": model}}
    if name:
        document["runner"] = {"experiment_name": name}
    lora = ResolvedLora(kind="adapter", parent_adapter_id=parent) if parent else None
    job = job_service.submit_job(session, parse_spec(document), max_attempts=3, lora=lora)
    row = session.get(models.Job, job.id)
    assert row is not None
    row.state = state.value
    session.flush()
    return row


def lora_result(store: ArtifactStore, *, rank: int = 8, seed: int = 0) -> AdapterResult:
    """A LoRA result as a worker's finish call offers it, its files stored."""
    return AdapterResult(kind="lora", files=lora_files(store, rank=rank, seed=seed), rank=rank,
                         target_modules=["q_proj", "v_proj"], base_fingerprint="f" * 64,
                         metrics={"loss": 0.5})


def make_adapter(state: Stores, *, name: str | None = "bot", model_path: str = BASE,
                 rank: int = 8, seed: int = 0, parent: str | None = None,
                 kind: str = "lora") -> Adapter:
    """A registered adapter, made as the worker's finish call would make it, committed."""
    with state.sessions() as session:
        job = make_job(session, name=name, model_path=model_path, is_lora=kind == "lora",
                       rank=rank, parent=parent)
        if kind == "lora":
            result = lora_result(state.store, rank=rank, seed=seed)
        else:
            files = [put(state.store, "config.json", b'{"model_type": "llama"}'),
                     put(state.store, "model.safetensors", safetensors_bytes(256, seed))]
            result = AdapterResult(kind=kind, files=files, target_modules=["q_proj", "v_proj"],
                                   base_fingerprint="f" * 64, metrics={"loss": 0.5})
        adapter = register_adapter(session, job, result, store=state.store)
        session.commit()
        return adapter


def add_checkpoint(session: Session, store: ArtifactStore, job: models.Job, step: int, *,
                   lora: bool = True, attempt: int = 1) -> Checkpoint:
    """Record a checkpoint of `job` at `step` with the files `checkpoint_files` makes."""
    return record_checkpoint(session, job, step=step, attempt=attempt, store=store,
                             files=checkpoint_files(store, step, lora=lora))


# ---------------------------------------------------------------------------- callers


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def token_parts(token: str) -> tuple[str, str]:
    """(token id, secret) of an `lp_tok_…_secret` token (the secret may hold `_`)."""
    match = auth.TOKEN_PATTERN.match(token)
    assert match, token
    return match.group(1), match.group(2)


def make_token(client: TestClient, role: str, project: str = "default") -> tuple[str, str]:
    """A new token made by the admin: (token id, token value)."""
    made = client.post("/tokens", json={"role": role, "project": project, "name": f"{role} test"})
    assert made.status_code == 201, made.text
    return made.json()["id"], made.json()["token"]


def as_caller(client: TestClient, token: str | None) -> TestClient:
    """Another client on the same running app, sending `token` (or no token)."""
    return TestClient(client.app, base_url=SERVER, headers=bearer(token) if token else {})


def assert_problem(response: httpx.Response, status: int, code: str | None = None) -> dict:
    """An application/problem+json answer with this status (and code): its body."""
    assert response.status_code == status, (response.request.method, response.request.url,
                                            response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    if code is not None:
        assert body["code"] == code, body
    return body


def refused(response: httpx.Response, status: int, *words: str) -> dict:
    """A problem+json refusal whose detail says what was wrong (each word, any case)."""
    body = assert_problem(response, status)
    for word in words:
        assert word.lower() in body["detail"].lower(), (word, body["detail"])
    return body


def upload_demo_dataset(caller: TestClient, name: str = "demo.jsonl") -> dict:
    """The bundled demo dataset, uploaded by `caller`: the dataset's JSON."""
    from worker.demo import demo_dataset_path

    uploaded = caller.post(f"/datasets?name={name}", content=demo_dataset_path().read_bytes(),
                           headers={"content-type": "application/jsonl"})
    assert uploaded.status_code == 201, uploaded.text
    return uploaded.json()


def run_worker(client: TestClient, settings: Settings, token: str | None = None, *,
               jobs: int = 1, on_request: Callable[[httpx.Request], None] | None = None) -> None:
    """Run `jobs` jobs with an in-process worker that speaks HTTP to the app, with `token`
    (default: the client's own, the admin's)."""
    from worker import Worker, WorkerOptions
    from worker.client import WorkerClient

    if token is None:
        token = client.headers["Authorization"].removeprefix("Bearer ")
    http = as_caller(client, token)
    if on_request is not None:
        http.event_hooks["request"].append(on_request)
    options = WorkerOptions(server=SERVER, token=None, models_dir=settings.models_dir,
                            work_dir=settings.data_dir / "worker", device="cpu",
                            wait_seconds=0, once=True)
    worker = Worker(options, client=WorkerClient(SERVER, http=http))
    for _ in range(jobs):
        worker.run()

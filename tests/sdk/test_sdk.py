"""The SDK (`loraplane-client`, installed from clients/python) against a real `loraplane serve`.

One live server with one local worker for the whole module, on SQLite: the SDK speaks HTTP
only, so the database engine makes no difference to what is tested here (the engines are
covered by the rest of the suite). Jobs are tiny (6 steps of the demo model), a few seconds
each on a CPU.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from loraplane_client import (
    ApiError,
    ChecksumMismatch,
    connect,
    download_adapter,
    follow_events,
    ok,
    resolve_adapter,
    submit_spec,
    wait_for_job,
)
from loraplane_client.api.adapters import list_adapters
from loraplane_client.api.jobs import get_job
from loraplane_client.api.tokens import list_tokens
from loraplane_client.models import Adapter, Job

from tests import REPO
from tests.live import LiveServer
from tests.specs import tiny_spec_yaml

pytestmark = pytest.mark.slow

SPEC_YAML = tiny_spec_yaml("sdk-demo") + """\
hydra:
  run: {dir: .}     # an RLinf section loraplane does not use: reported, not refused
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data = tmp_path_factory.mktemp("sdk") / "data"
    with LiveServer(data, f"sqlite:///{data / 'loraplane.db'}", workers=1) as live:
        yield live


@pytest.fixture(scope="module")
def sdk(server: LiveServer):
    client = connect(server.url, server.admin_token)
    yield client
    client.get_httpx_client().close()


@pytest.fixture(scope="module")
def trained(sdk) -> Adapter:
    """One adapter, trained from the YAML spec (waited for with wait_for_job)."""
    job = submit_spec(sdk, SPEC_YAML)
    done = wait_for_job(sdk, job.id, timeout=180)
    assert str(done.state) == "succeeded", done.error
    return ok_adapter(sdk, done)


def ok_adapter(sdk, job: Job) -> Adapter:
    return resolve_adapter(sdk, job.adapter_id)


def test_the_sdk_is_the_installed_client_package() -> None:
    import loraplane_client

    assert importlib.metadata.version("loraplane-client") == "0.1.0"
    assert Path(loraplane_client.__file__).is_relative_to(REPO / "clients" / "python")


def test_submit_yaml_wait_and_read_back(sdk, server: LiveServer) -> None:
    job = submit_spec(sdk, SPEC_YAML.replace("sdk-demo", "sdk-wait"))
    assert job.id.startswith("job_") and str(job.state) == "queued"
    assert "hydra" in job.ignored_keys
    assert job.spec.actor.model.lora_rank == 4  # the typed spec, defaults filled in

    seen: list[Job] = []
    done = wait_for_job(sdk, job.id, timeout=180, on_progress=seen.append)
    assert str(done.state) == "succeeded", done.error
    assert done.progress.step == done.progress.total == 6
    steps = [j.progress.step for j in seen]
    assert steps == sorted(steps) and seen[-1].progress.step == 6
    assert str(seen[0].state) in ("queued", "running")
    assert done.adapter_id.startswith("ad_")
    assert ok(get_job.sync_detailed(job.id, client=sdk)).adapter_id == done.adapter_id


def test_every_adapter_reference_form_resolves(sdk, trained: Adapter) -> None:
    for ref in (trained.id, "sdk-demo:1", "sdk-demo@latest", "sdk-demo", trained.lora_path):
        assert resolve_adapter(sdk, ref).id == trained.id, ref
    with pytest.raises(ApiError) as missing:
        resolve_adapter(sdk, "sdk-demo:99")
    assert missing.value.status == 404
    with pytest.raises(ValueError):
        resolve_adapter(sdk, "not a reference!")


def test_download_is_a_verified_peft_folder(sdk, server: LiveServer, trained: Adapter,
                                            tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    folder = download_adapter(sdk, "sdk-demo@latest", tmp_path / "pulled",
                              progress=lambda done, total: calls.append((done, total)))
    total = sum(f.size for f in trained.files)
    assert calls[-1] == (total, total)
    for ref in trained.files:
        data = (folder / ref.name).read_bytes()
        assert len(data) == ref.size and hashlib.sha256(data).hexdigest() == ref.sha256
    assert not list(folder.glob("*.part"))

    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(server.data_dir / "models" / "demo-tiny-llama")
    model = PeftModel.from_pretrained(base, folder)
    assert any("lora_A" in name for name, _ in model.named_parameters())

    # A second pull finds every file intact and downloads nothing.
    requests: list[httpx.Request] = []
    sdk.get_httpx_client().event_hooks["request"].append(requests.append)
    try:
        download_adapter(sdk, trained.id, folder)
    finally:
        sdk.get_httpx_client().event_hooks["request"].remove(requests.append)
    assert not [r for r in requests if "/files/" in r.url.path]


def test_resume_from_the_adapter_follow_live_and_list_lineage(sdk, trained: Adapter) -> None:
    spec = {"actor": {"model": {"model_path": "demo-tiny-llama", "is_lora": True,
                                "lora_path": trained.lora_path},
                      "optim": {"lr": 0.01}, "micro_batch_size": 4, "global_batch_size": 8},
            "data": {"train_data_paths": "demo"},
            "runner": {"experiment_name": "sdk-demo", "max_steps": 6, "save_interval": 3}}
    child = submit_spec(sdk, spec)  # a dict goes as JSON
    assert child.parent_adapter_id == trained.id

    events = list(follow_events(sdk, child.id))  # live, until the job ends
    ids = [e.id for e in events]
    assert ids == sorted(set(ids))
    metrics = [e.data.to_dict() for e in events if e.kind == "metrics"]
    assert [m["step"] for m in metrics] == [1, 2, 3, 4, 5, 6]
    assert all("loss" in m for m in metrics)
    states = [e.data.to_dict()["to"] for e in events if e.kind == "state"]
    assert states[-1] == "succeeded"
    # Following again from an event id gives only what came after it.
    later = list(follow_events(sdk, child.id, after=ids[-3]))
    assert [e.id for e in later] == ids[-2:]

    done = wait_for_job(sdk, child.id, timeout=60)
    adapter = resolve_adapter(sdk, done.adapter_id)
    assert (adapter.name, adapter.version) == ("sdk-demo", 2)
    assert adapter.parent_adapter_id == trained.id
    assert [(e.name, e.version) for e in adapter.lineage] == [("sdk-demo", 1)]
    assert adapter.rank == trained.rank == 4
    versions = ok(list_adapters.sync_detailed(client=sdk, name="sdk-demo"))
    assert [a.version for a in versions.items] == [2, 1]


class _CutOnce(httpx.BaseTransport):
    """In front of the real server: the first download of `name` dies after `keep` bytes."""

    def __init__(self, name: str, keep: int):
        self.inner = httpx.HTTPTransport()
        self.name, self.keep, self.cut = name, keep, False
        self.ranges: list[tuple[str | None, int]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if not request.url.path.endswith("/files/" + self.name):
            return response
        self.ranges.append((request.headers.get("range"), response.status_code))
        if self.cut:
            return response
        self.cut = True
        keep = self.keep

        class Dying(httpx.SyncByteStream):
            def __iter__(self) -> Iterator[bytes]:
                sent = 0
                for chunk in response.stream:
                    chunk = chunk[: keep - sent]
                    sent += len(chunk)
                    yield chunk
                    if sent >= keep:
                        raise httpx.ReadError("connection reset mid-body")

            def close(self) -> None:
                response.close()

        return httpx.Response(response.status_code, headers=response.headers, stream=Dying(),
                              request=request)


class _Tamper(httpx.BaseTransport):
    """In front of the real server: flips one byte of every adapter file it serves."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if "/files/" not in request.url.path or response.status_code >= 300:
            return response
        body = bytearray(response.read())
        body[len(body) // 2] ^= 0xFF
        return httpx.Response(response.status_code, headers=response.headers,
                              stream=_Bytes(bytes(body)), request=request)


class _Bytes(httpx.SyncByteStream):
    def __init__(self, data: bytes):
        self.data = data

    def __iter__(self) -> Iterator[bytes]:
        yield self.data


def _client_through(server: LiveServer, transport: httpx.BaseTransport):
    client = connect(server.url, server.admin_token)
    client.set_httpx_client(httpx.Client(
        base_url=server.url, transport=transport, timeout=30,
        headers={"Authorization": f"Bearer {server.admin_token}"}))
    return client


def test_download_resumes_a_cut_transfer_with_range(server: LiveServer, trained: Adapter,
                                                    tmp_path: Path) -> None:
    weights = next(f for f in trained.files if f.name == "adapter_model.safetensors")
    keep = weights.size // 3
    transport = _CutOnce(weights.name, keep)
    client = _client_through(server, transport)
    dest = tmp_path / "cut"
    with pytest.raises(httpx.ReadError):
        download_adapter(client, trained.id, dest)
    part = dest / (weights.name + ".part")
    assert part.stat().st_size == keep  # what arrived before the cut is kept
    assert not (dest / weights.name).exists()

    folder = download_adapter(client, trained.id, dest)  # the same call, again
    assert transport.ranges == [(None, 200), (f"bytes={keep}-", 206)]
    data = (folder / weights.name).read_bytes()
    assert hashlib.sha256(data).hexdigest() == weights.sha256
    assert not part.exists()


def test_download_refuses_bytes_that_do_not_match_their_sha256(server: LiveServer,
                                                               trained: Adapter,
                                                               tmp_path: Path) -> None:
    dest = tmp_path / "tampered"
    with pytest.raises(ChecksumMismatch, match="hashes to"):
        download_adapter(_client_through(server, _Tamper()), trained.id, dest)
    assert not [p for p in dest.rglob("*") if p.is_file()]  # nothing bad left behind

    # A corrupt partial file from an earlier try is not trusted either: it is replaced.
    weights = next(f for f in trained.files if f.name == "adapter_model.safetensors")
    (dest / (weights.name + ".part")).write_bytes(b"\0" * (weights.size // 2))
    sdk = connect(server.url, server.admin_token)
    folder = download_adapter(sdk, trained.id, dest)
    data = (folder / weights.name).read_bytes()
    assert hashlib.sha256(data).hexdigest() == weights.sha256


def test_errors_carry_the_problem_details(sdk, server: LiveServer) -> None:
    with pytest.raises(ApiError) as typo:
        submit_spec(sdk, SPEC_YAML.replace("is_lora:", "is_lorra:"))
    assert (typo.value.status, typo.value.code) == (422, "invalid_spec")
    assert "did you mean 'is_lora'?" in typo.value.detail
    with pytest.raises(ApiError) as missing:
        ok(get_job.sync_detailed("job_00000000000000000000000000", client=sdk))
    assert missing.value.status == 404 and missing.value.code == "not_found"
    anonymous = connect(server.url, "lp_not_a_token", data_dir=server.data_dir)
    with pytest.raises(ApiError) as refused:
        ok(get_job.sync_detailed("job_x", client=anonymous))
    assert (refused.value.status, refused.value.code) == (401, "unauthorized")


def test_connect_finds_the_token(monkeypatch: pytest.MonkeyPatch, server: LiveServer,
                                 tmp_path: Path) -> None:
    """`connect()` sends the admin token it finds: an admin-only list answers 200 with the
    bootstrap tokens, which only the admin may see."""
    for name in ("LORAPLANE_TOKEN", "LORAPLANE_ADMIN_TOKEN", "LORAPLANE_SERVER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LORAPLANE_DATA_DIR", str(server.data_dir))  # its admin.token
    monkeypatch.setenv("LORAPLANE_SERVER", server.url)

    def token_names() -> set[str]:
        found = list_tokens.sync_detailed(client=connect())
        assert found.status_code == 200, found.content
        return {token.name for token in found.parsed.items}

    bootstrap = token_names()
    assert {"bootstrap admin", "embedded workers"} <= bootstrap, bootstrap

    monkeypatch.setenv("LORAPLANE_DATA_DIR", str(tmp_path))  # no token file there
    with pytest.raises(ApiError) as anonymous:
        ok(list_adapters.sync_detailed(client=connect()))
    assert (anonymous.value.status, anonymous.value.code) == (401, "unauthorized")
    monkeypatch.setenv("LORAPLANE_TOKEN", server.admin_token)
    assert token_names() == bootstrap


@pytest.mark.parametrize(
    ("ref", "path"),
    [
        ("ad_01m8bxvst6hk0g6n3knz73b8at", "/adapters/ad_01m8bxvst6hk0g6n3knz73b8at"),
        ("ad_thing@prod", "/aliases/ad_thing/prod"),  # a name may start with ad_
        ("ad_thing", "/aliases/ad_thing/latest"),
        ("http://h:1/adapters/ad_01m8bxvst6hk0g6n3knz73b8at",
         "/adapters/ad_01m8bxvst6hk0g6n3knz73b8at"),
    ],
)
def test_resolve_adapter_asks_for_what_the_reference_names(ref: str, path: str) -> None:
    from loraplane_client import Client

    asked: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        return httpx.Response(404, json={"type": "about:blank", "title": "Not Found", "status": 404,
                                         "code": "not_found", "detail": "no"})

    sdk = Client(base_url="http://h:1", httpx_args={"transport": httpx.MockTransport(answer)})
    with pytest.raises(ApiError):
        resolve_adapter(sdk, ref)
    assert asked == [path]

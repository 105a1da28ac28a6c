"""The registry over HTTP: adapter reads, lists, lineage, aliases, deletion, file and archive
downloads."""

from __future__ import annotations

import io
import tarfile

import anyio
import pytest
from fastapi.testclient import TestClient

from api.deps import AppState
from service.schemas import JobState
from service.settings import Settings
from tests.factories import BASE, make_adapter, make_job
from tests.s3 import artifacts_url, s3_endpoint  # noqa: F401  (fixtures: both stores)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The app of these tests, with its webhook loop polling once an hour: its idle look for
    due messages checks a connection out, which the pool counts below would see."""
    return settings.model_copy(update={"webhook_poll_seconds": 3600.0})

# ---------------------------------------------------------------------------- reads


def test_get_adapter_shows_everything(client: TestClient, state: AppState):
    adapter = make_adapter(state, rank=16)
    body = client.get(f"/adapters/{adapter.id}").json()
    assert body["id"].startswith("ad_")
    assert (body["name"], body["version"], body["kind"], body["base_model"]) == (
        "bot",
        1,
        "lora",
        BASE,
    )
    assert (body["rank"], body["alpha"], body["base_fingerprint"]) == (16, 16.0, "f" * 64)
    assert body["target_modules"] == ["q_proj", "v_proj"]
    assert {f["name"] for f in body["files"]} == {
        "adapter_config.json",
        "adapter_model.safetensors",
    }
    assert all(len(f["sha256"]) == 64 and f["size"] > 0 for f in body["files"])
    assert body["job_id"].startswith("job_") and body["metrics"] == {"loss": 0.5}
    assert body["lineage"] == [] and body["aliases"] == [] and body["parent_adapter_id"] is None
    assert body["lora_path"] == f"http://testserver/adapters/{adapter.id}"
    assert body["download_url"] == f"http://testserver/adapters/{adapter.id}/archive"
    job = client.get(f"/jobs/{body['job_id']}").json()
    assert job["adapter_id"] == adapter.id

    missing = client.get("/adapters/ad_00000000000000000000000000")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


def test_public_url_setting_shapes_urls(client: TestClient, state: AppState):
    adapter = make_adapter(state)
    state.settings.public_url = "https://lp.example/api/"
    body = client.get(f"/adapters/{adapter.id}").json()
    assert body["lora_path"] == f"https://lp.example/api/adapters/{adapter.id}"
    assert body["download_url"] == f"https://lp.example/api/adapters/{adapter.id}/archive"


def test_list_filters_and_pages(client: TestClient, state: AppState):
    made = [make_adapter(state, name="a", seed=i) for i in range(3)]
    made += [make_adapter(state, name="b", model_path="/models/other", seed=9)]
    made += [make_adapter(state, name="c", kind="full")]
    pages, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/adapters", params=params).json()
        pages.append([a["id"] for a in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [i for p in pages for i in p] == [a.id for a in reversed(made)]
    by_name = client.get("/adapters", params={"name": "a"}).json()["items"]
    assert [a["version"] for a in by_name] == [3, 2, 1]
    by_base = client.get("/adapters", params={"base_model": "/models/other"}).json()["items"]
    assert [a["name"] for a in by_base] == ["b"]
    full = client.get("/adapters", params={"kind": "full"}).json()["items"]
    assert [a["name"] for a in full] == ["c"]
    assert client.get("/adapters", params={"kind": "nope"}).status_code == 422
    assert client.get("/adapters", params={"cursor": "garbage!"}).status_code == 422


def test_lineage_chain_of_three(client: TestClient, state: AppState):
    first = make_adapter(state, name="base-bot", seed=1)
    second = make_adapter(state, name="bot", seed=2, parent=first.id)
    third = make_adapter(state, name="bot", seed=3, parent=second.id)
    body = client.get(f"/adapters/{third.id}").json()
    assert body["parent_adapter_id"] == second.id
    assert body["lineage"] == [
        {"id": second.id, "name": "bot", "version": 1},
        {"id": first.id, "name": "base-bot", "version": 1},
    ]
    listed = {a["id"]: a["lineage"] for a in client.get("/adapters").json()["items"]}
    assert [e["id"] for e in listed[third.id]] == [second.id, first.id]
    assert listed[first.id] == []


# ---------------------------------------------------------------------------- aliases


def test_alias_put_get_move_delete(client: TestClient, state: AppState):
    v1 = make_adapter(state, seed=1)
    v2 = make_adapter(state, seed=2)
    other = make_adapter(state, name="other", seed=3)

    assert client.get("/aliases/bot/prod").status_code == 404
    put1 = client.put("/aliases/bot/prod", json={"adapter_id": v1.id})
    assert put1.status_code == 200, put1.text
    assert client.get("/aliases/bot/prod").json()["adapter_id"] == v1.id
    assert client.get(f"/adapters/{v1.id}").json()["aliases"] == ["prod"]

    moved = client.put("/aliases/bot/prod", json={"adapter_id": v2.id}).json()
    assert (moved["adapter_id"], moved["version"]) == (v2.id, 2)
    assert client.get(f"/adapters/{v1.id}").json()["aliases"] == []
    assert client.get(f"/adapters/{v2.id}").json()["aliases"] == ["prod"]
    assert client.get("/aliases/bot/latest").json()["adapter_id"] == v2.id

    wrong_name = client.put("/aliases/bot/prod", json={"adapter_id": other.id})
    assert wrong_name.status_code == 422
    assert "named 'other'" in wrong_name.json()["detail"]
    unknown = client.put("/aliases/bot/prod", json={"adapter_id": "ad_00000000000000000000000000"})
    assert unknown.status_code == 422
    assert client.put("/aliases/bot/-bad", json={"adapter_id": v1.id}).status_code == 422
    assert client.put("/aliases/bot/latest", json={"adapter_id": v1.id}).status_code == 422
    assert client.put("/aliases/bot/prod", json={}).status_code == 422

    assert client.delete("/aliases/bot/prod").status_code == 204
    assert client.get("/aliases/bot/prod").status_code == 404
    assert client.delete("/aliases/bot/prod").status_code == 404


# ---------------------------------------------------------------------------- deletion


def test_delete_refused_while_held_then_blobs_collected(client: TestClient, state: AppState):
    doomed = make_adapter(state, seed=1)
    keeper = make_adapter(state, seed=2)  # same adapter_config.json bytes as `doomed`
    child = make_adapter(state, seed=3, parent=doomed.id)
    shared = {f.name: f.sha256 for f in doomed.files}
    assert shared["adapter_config.json"] in {f.sha256 for f in keeper.files}

    client.put("/aliases/bot/prod", json={"adapter_id": doomed.id})
    refused = client.delete(f"/adapters/{doomed.id}")
    assert refused.status_code == 409
    assert "bot@prod" in refused.json()["detail"]
    client.delete("/aliases/bot/prod")

    with state.sessions() as session:
        job = make_job(session, state=JobState.queued, parent=doomed.id)
        session.commit()
    refused = client.delete(f"/adapters/{doomed.id}")
    assert refused.status_code == 409
    assert job.id in refused.json()["detail"] and "queued" in refused.json()["detail"]
    assert client.post(f"/jobs/{job.id}/cancel").status_code == 200

    assert client.delete(f"/adapters/{doomed.id}").status_code == 204
    assert client.get(f"/adapters/{doomed.id}").status_code == 404
    assert client.delete(f"/adapters/{doomed.id}").status_code == 404
    assert not state.store.exists(shared["adapter_model.safetensors"])
    assert state.store.exists(shared["adapter_config.json"])  # still keeper's
    assert client.get(f"/adapters/{keeper.id}/files/adapter_config.json").status_code == 200
    assert client.get(f"/adapters/{child.id}").json()["parent_adapter_id"] is None


# ---------------------------------------------------------------------------- downloads


def test_file_download_range_etag_and_archive(client: TestClient, state: AppState):
    adapter = make_adapter(state)
    weights = next(f for f in adapter.files if f.name == "adapter_model.safetensors")
    expected = state.store.open(weights.sha256).read()
    url = f"/adapters/{adapter.id}/files/adapter_model.safetensors"

    whole = client.get(url)
    assert whole.status_code == 200 and whole.content == expected
    assert whole.headers["etag"] == f'"{weights.sha256}"'
    assert whole.headers["accept-ranges"] == "bytes"

    cut = 1000
    head = client.get(url, headers={"Range": f"bytes=0-{cut - 1}"})
    tail = client.get(url, headers={"Range": f"bytes={cut}-", "If-Range": f'"{weights.sha256}"'})
    assert (head.status_code, tail.status_code) == (206, 206)
    assert tail.headers["content-range"] == f"bytes {cut}-{len(expected) - 1}/{len(expected)}"
    assert head.content + tail.content == expected

    assert client.get(url, headers={"If-None-Match": f'"{weights.sha256}"'}).status_code == 304
    bad = client.get(url, headers={"Range": f"bytes={len(expected) + 10}-"})
    assert bad.status_code == 416
    assert bad.headers["content-range"] == f"bytes */{len(expected)}"
    assert client.get(f"/adapters/{adapter.id}/files/model.bin").status_code == 404
    assert client.head(url).headers["content-length"] == str(len(expected))

    archive = client.get(f"/adapters/{adapter.id}/archive")
    assert archive.status_code == 200
    assert archive.headers["content-type"] == "application/x-tar"
    assert "bot-v1.tar" in archive.headers["content-disposition"]
    with tarfile.open(fileobj=io.BytesIO(archive.content)) as tar:
        unpacked = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    assert unpacked == {f.name: state.store.open(f.sha256).read() for f in adapter.files}
    again = client.get(f"/adapters/{adapter.id}/archive")
    assert again.content == archive.content
    cached = client.get(
        f"/adapters/{adapter.id}/archive", headers={"If-None-Match": archive.headers["etag"]}
    )
    assert cached.status_code == 304
    assert client.get("/adapters/ad_00000000000000000000000000/archive").status_code == 404


def test_downloads_hold_no_database_connection_while_streaming(client: TestClient, state: AppState):
    """A request's session closes when its endpoint returns, before the body is sent: a slow
    client downloading a large file must not keep a pooled connection (and, on SQLite, a read
    snapshot) for the whole transfer."""
    adapter = make_adapter(state)
    paths = [f"/adapters/{adapter.id}/files/adapter_model.safetensors",
             f"/adapters/{adapter.id}/archive", f"/adapters/{adapter.id}"]
    checked_out: dict[str, list[int]] = {p: [] for p in paths}

    async def get(path: str) -> None:
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                 "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
                 "root_path": "", "query_string": b"", "server": ("testserver", 80),
                 "client": ("127.0.0.1", 1), "headers": [
                     (b"host", b"testserver"),
                     (b"authorization", client.headers["Authorization"].encode())]}

        requested, done = False, anyio.Event()

        async def receive() -> dict:
            nonlocal requested
            if not requested:
                requested = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await done.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            if message["type"] == "http.response.start":
                assert message["status"] == 200, message
            if message["type"] == "http.response.body":
                checked_out[path].append(state.engine.pool.checkedout())
                if not message.get("more_body"):
                    done.set()

        await client.app(scope, receive, send)

    for path in paths:
        client.portal.call(get, path)
    assert all(counts and set(counts) == {0} for counts in checked_out.values()), checked_out

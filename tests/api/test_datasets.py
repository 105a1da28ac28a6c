"""Datasets: streamed JSONL uploads, validation with line numbers, limits, the submit check."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.datasets import MEDIA_TYPES, JsonlValidator
from service.errors import InvalidDataset
from service.settings import Settings

JSONL = {"content-type": "application/jsonl"}
ROWS = [
    {"prompt": f"q{i}", "answer": f"a{i}", **({"extra": i} if i % 2 else {})} for i in range(50)
]
BODY = "".join(json.dumps(r) + "\n" for r in ROWS).encode()


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=db_url,
        lease_seconds=30,
        max_dataset_bytes=64 * 1024,
        max_spec_bytes=4 * 1024,  # below the dataset limit: uploads must pass the JSON bound
    )


def upload(
    client: TestClient,
    body: bytes | Iterator[bytes],
    *,
    name: str | None = None,
    headers: dict[str, str] | None = None,
):
    params = {"name": name} if name else {}
    return client.post("/datasets", content=body, params=params, headers=headers or JSONL)


def stored_blobs(client: TestClient) -> list[Path]:
    store = client.app.state.loraplane.store
    return [p for p in store.blobs_dir.rglob("*") if p.is_file()]


def test_upload_read_list_and_download(client: TestClient, settings: Settings):
    response = upload(client, BODY, name="train.jsonl")
    assert response.status_code == 201, response.text
    dataset = response.json()
    assert dataset["id"].startswith("ds_")
    assert response.headers["location"] == f"/datasets/{dataset['id']}"
    assert (dataset["name"], dataset["rows"], dataset["size"]) == ("train.jsonl", 50, len(BODY))
    assert dataset["sha256"] == hashlib.sha256(BODY).hexdigest()
    assert dataset["keys"] == ["answer", "prompt"]  # `extra` is not in every row
    assert client.get(f"/datasets/{dataset['id']}").json() == dataset

    content = client.get(f"/datasets/{dataset['id']}/content")
    assert content.status_code == 200 and content.content == BODY
    assert content.headers["etag"] == f'"{dataset["sha256"]}"'
    part = client.get(f"/datasets/{dataset['id']}/content", headers={"Range": "bytes=10-"})
    assert part.status_code == 206 and part.content == BODY[10:]

    # Every accepted type is streamed past the front gate's JSON bound (max_spec_bytes).
    big = BODY * (2 * settings.max_spec_bytes // len(BODY) + 1)
    assert settings.max_spec_bytes < len(big) < settings.max_dataset_bytes
    for kind in sorted(MEDIA_TYPES):
        response = upload(client, big, headers={"content-type": kind})
        assert response.status_code == 201, (kind, response.text)
    unnamed = upload(client, b'{"x": 1}')
    assert unnamed.json()["name"] == unnamed.json()["id"]
    pages = [client.get("/datasets", params={"limit": 2}).json()]
    while pages[-1]["next_cursor"] is not None:
        cursor = pages[-1]["next_cursor"]
        pages.append(client.get("/datasets", params={"limit": 2, "cursor": cursor}).json())
    ids = [d["id"] for page in pages for d in page["items"]]
    assert [len(page["items"]) for page in pages] == [2, 2, 2, 1]  # 1 + 5 types + unnamed
    assert len(set(ids)) == 2 + len(MEDIA_TYPES) and ids[0] == unnamed.json()["id"]
    assert client.get("/datasets/ds_00000000000000000000000000").status_code == 404


def test_streamed_upload_in_odd_chunks(client: TestClient):
    def chunks() -> Iterator[bytes]:
        for i in range(0, len(BODY), 7):
            yield BODY[i : i + 7]

    response = upload(client, chunks())
    assert response.status_code == 201, response.text
    assert response.json()["rows"] == 50
    assert response.json()["sha256"] == hashlib.sha256(BODY).hexdigest()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"prompt": "a"}\n{"prompt": "b"}\n{"prompt": \n', "line 3 is not valid JSON"),
        (b'{"prompt": "a"}\n[1, 2]\n', "line 2 is a JSON array, not an object"),
        (b'{"prompt": "a"}\n\n"text"\n', "line 3 is a JSON string"),
        (b'{"prompt": "\xff"}\n', "line 1 is not valid UTF-8"),
        (b'{"prompt": NaN}\n', "line 1 holds NaN"),
        (b'{"a": 1}\n{"a": 2}\n{"a"', "line 3 is not valid JSON"),
        (b"\n \n", "no rows"),
        (b"", "no rows"),
    ],
    ids=[
        "bad-json",
        "array",
        "string-after-blank",
        "utf8",
        "nan",
        "unterminated-last",
        "blank",
        "empty",
    ],
)
def test_invalid_lines_are_named_and_nothing_is_stored(
    client: TestClient, body: bytes, message: str
):
    response = upload(client, body)
    assert response.status_code == 422, response.text
    assert message in response.json()["detail"]
    assert response.json()["code"] == "invalid_dataset"
    assert client.get("/datasets").json()["items"] == []
    assert stored_blobs(client) == []
    assert list(client.app.state.loraplane.store.tmp_dir.iterdir()) == []


def test_size_limit(client: TestClient, settings: Settings):
    big = (json.dumps({"prompt": "x" * 1000, "answer": "y"}) + "\n").encode() * 100
    assert len(big) > settings.max_dataset_bytes
    declared = upload(client, big)
    assert declared.status_code == 413
    assert str(settings.max_dataset_bytes) in declared.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: caught while streaming
        for i in range(0, len(big), 4096):
            yield big[i : i + 4096]

    streamed = upload(client, chunks())
    assert streamed.status_code == 413
    assert stored_blobs(client) == []
    assert list(client.app.state.loraplane.store.tmp_dir.iterdir()) == []


def test_media_type_and_name_checks(client: TestClient):
    assert upload(client, BODY, headers={"content-type": "application/json"}).status_code == 415
    assert upload(client, BODY, name="bad\nname").status_code == 422


def test_validator_handles_any_chunking():
    rng = random.Random(7)
    body = BODY + b'{"prompt": "\xc3\xa9t\xc3\xa9", "answer": "x"}\r\n'
    for _ in range(20):
        validator, i = JsonlValidator(), 0
        while i < len(body):
            step = rng.randint(1, 40)
            validator.feed(body[i : i + step])
            i += step
        assert validator.finish() == (51, ["answer", "prompt"])
    tiny = JsonlValidator(max_line_bytes=16)
    with pytest.raises(InvalidDataset, match="line 2 is longer than 16 bytes"):
        tiny.feed(b'{"a": 1}\n{"a": "' + b"x" * 20)


# ---------------------------------------------------------------------------- submit-time check


def submit(client: TestClient, data: dict):
    spec = {
        "actor": {"model": {"model_path": "demo-tiny-llama", "is_lora": True, "lora_rank": 8}},
        "data": data,
    }
    return client.post("/jobs", json=spec)


def test_submit_checks_dataset_ids_and_keys(client: TestClient):
    dataset = upload(client, BODY).json()
    assert submit(client, {"train_data_paths": [dataset["id"]]}).status_code == 201
    assert (
        submit(
            client, {"train_data_paths": dataset["id"], "val_data_paths": [dataset["id"]]}
        ).status_code
        == 201
    )
    # A worker-local file is accepted only under the allowed roots.
    outside = submit(client, {"train_data_paths": ["demo", "/data/sft.jsonl"]})
    assert outside.status_code == 422
    assert "LORAPLANE_DATA_PATH_ROOTS" in outside.json()["detail"]
    client.app.state.loraplane.settings.data_path_roots = [Path("/data")]
    assert submit(client, {"train_data_paths": ["demo", "/data/sft.jsonl"]}).status_code == 201

    missing_key = submit(client, {"train_data_paths": [dataset["id"]], "prompt_key": "input"})
    assert missing_key.status_code == 422
    detail = missing_key.json()["detail"]
    assert "'input'" in detail and "['answer', 'prompt']" in detail
    assert missing_key.json()["errors"][0]["loc"] == "data.prompt_key"
    missing_answer = submit(client, {"val_data_paths": [dataset["id"]], "answer_key": "extra"})
    assert missing_answer.status_code == 422 and "'extra'" in missing_answer.json()["detail"]

    unknown = submit(client, {"train_data_paths": ["ds_00000000000000000000000000"]})
    assert unknown.status_code == 422
    assert "no dataset 'ds_00000000000000000000000000'" in unknown.json()["detail"]
    assert len(client.get("/jobs").json()["items"]) == 3


def test_every_download_route_answers_head_with_the_get_handler() -> None:
    """Each ranged download is registered once for GET (documented) and once for HEAD."""
    from api.routers import adapters, checkpoints, datasets, worker

    routes = [r for m in (adapters, checkpoints, datasets, worker) for r in m.router.routes]
    downloads = {r.operation_id: r for r in routes if getattr(r, "operation_id", None) in {
        "download_adapter_file", "download_checkpoint_file", "download_dataset",
        "download_job_input"}}
    assert len(downloads) == 4
    for get in downloads.values():
        heads = [r for r in routes if r.path == get.path and "HEAD" in r.methods]
        assert [h.endpoint for h in heads] == [get.endpoint], get.path


def test_head_of_a_dataset_gives_the_get_headers_and_no_body(client: TestClient) -> None:
    dataset = upload(client, BODY).json()
    got = client.get(f"/datasets/{dataset['id']}/content")
    head = client.head(f"/datasets/{dataset['id']}/content")
    assert head.status_code == 200 and head.content == b""
    for name in ("etag", "content-length", "accept-ranges", "content-type"):
        assert head.headers[name] == got.headers[name], name

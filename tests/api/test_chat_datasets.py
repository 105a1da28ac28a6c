"""Chat datasets: conversations checked at upload (line number and what is wrong, nothing
stored) and at submit (conversations or pairs; other messages keys read from the store)."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from service.datasets import conversation_problem as server_problem
from tests.worker.trainer.chat_cases import BAD_CASES, GOOD
from worker.trainer.chat import conversation_problem as worker_problem

JSONL = {"content-type": "application/jsonl"}
def _body(*rows: dict) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


def _upload(client: TestClient, body: bytes):
    return client.post("/datasets", content=body, headers=JSONL)


def _submit(client: TestClient, dataset_id: str, **data):
    spec = {"actor": {"model": {"model_path": "demo-tiny-llama", "is_lora": True,
                                "lora_rank": 4}},
            "data": {"train_data_paths": [dataset_id], **data}}
    return client.post("/jobs", json=spec)


@pytest.mark.parametrize(("messages", "problem"), BAD_CASES)
def test_the_server_and_the_worker_check_conversations_alike(messages, problem: str) -> None:
    assert server_problem(messages) == worker_problem(messages) == problem
    assert server_problem(GOOD["messages"]) is None and worker_problem(GOOD["messages"]) is None


@pytest.mark.parametrize(("messages", "problem"), BAD_CASES)
def test_bad_conversations_are_refused_at_upload_with_line_and_reason(
    client: TestClient, messages, problem: str
) -> None:
    response = _upload(client, _body(GOOD, GOOD, {"messages": messages}))
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "invalid_dataset"
    assert body["detail"] == f"line 3 'messages' {problem}; nothing was stored"
    assert body["errors"][0]["loc"] == "body.line.3"
    assert body["errors"][0]["type"] == "invalid_conversation"
    assert client.get("/datasets").json()["items"] == []


def test_a_chat_dataset_uploads_and_submits(client: TestClient) -> None:
    response = _upload(client, _body(GOOD, {**GOOD, "id": 2}))
    assert response.status_code == 201, response.text
    dataset = response.json()
    assert (dataset["rows"], dataset["keys"]) == (2, ["messages"])
    job = _submit(client, dataset["id"])
    assert job.status_code == 201, job.text


def test_a_dataset_of_neither_conversations_nor_pairs_is_refused_at_submit(
    client: TestClient,
) -> None:
    dataset = _upload(client, _body(GOOD, {"prompt": "q", "answer": "a"})).json()
    assert dataset["keys"] == []
    response = _submit(client, dataset["id"])
    assert response.status_code == 422
    assert response.json()["code"] == "dataset_missing_key"
    assert "nor data.messages_key 'messages' (conversations)" in response.json()["detail"]


def test_conversations_under_another_key_are_checked_at_submit(client: TestClient) -> None:
    good = {"chat": GOOD["messages"]}
    bad = {"chat": [{"role": "user", "content": "hi"}, {"role": "robot", "content": "x"}]}
    ok = _upload(client, _body(good, good)).json()
    assert _submit(client, ok["id"], messages_key="chat").status_code == 201
    broken = _upload(client, _body(good, bad)).json()  # `chat` means nothing at upload
    response = _submit(client, broken["id"], messages_key="chat")
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "invalid_dataset"
    assert body["detail"] == (
        f"data.train_data_paths.0: dataset {broken['id']} ({broken['id']}): line 2 'chat' "
        "message 2 has unknown role 'robot'; roles are system, user, assistant"
    )
    assert len(client.get("/jobs").json()["items"]) == 1

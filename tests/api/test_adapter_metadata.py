"""Descriptions and tags (`PATCH /adapters/{id}`), tag filters and metric ordering of the list."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.deps import AppState
from db import models
from tests import peft_folders
from tests.peft_folders import import_tar, pair

# Fixtures shared with the other import/export suites.
peft_folder = peft_folders.peft_folder


@pytest.fixture
def three(client: TestClient, peft_folder: Path) -> list[dict]:
    files = pair(peft_folder)
    made = [import_tar(client, files, name=name).json() for name in ("alpha", "beta", "gamma")]
    assert all("id" in a for a in made), made
    return made


def test_description_and_tags_round_trip(client: TestClient, three: list[dict]):
    adapter = three[0]["id"]
    patched = client.patch(f"/adapters/{adapter}", json={
        "description": "Support answers, trained with TRL on tickets from 2025.",
        "tags": {"team": "search", "stage": "dev", "dataset/version": "v3"}})
    assert patched.status_code == 200, patched.text
    got = client.get(f"/adapters/{adapter}").json()
    assert got["description"] == "Support answers, trained with TRL on tickets from 2025."
    assert got["tags"] == {"dataset/version": "v3", "stage": "dev", "team": "search"}
    assert got == patched.json()

    # A merge patch: left out is unchanged, a null value drops that tag, null clears.
    merged = client.patch(f"/adapters/{adapter}", json={"tags": {"stage": "prod", "team": None}})
    assert merged.json()["tags"] == {"dataset/version": "v3", "stage": "prod"}
    assert merged.json()["description"].startswith("Support answers")
    cleared = client.patch(f"/adapters/{adapter}", json={"description": None, "tags": None})
    assert (cleared.json()["description"], cleared.json()["tags"]) == (None, {})


@pytest.mark.parametrize(("body", "code"), [
    ({"tags": {"bad key": "v"}}, "invalid_tag"),
    ({"tags": {"k:v": "v"}}, "invalid_tag"),
    ({"tags": {"k": "x" * 257}}, "invalid_tag"),
    ({"tags": {"k": "line\nbreak"}}, "invalid_tag"),
    ({"tags": {f"k{i}": "v" for i in range(51)}}, "invalid_request"),
    ({"description": "x" * 4097}, "invalid_request"),
    ({"name": "renamed"}, "invalid_request"),
])
def test_bad_metadata_is_refused_and_changes_nothing(
    client: TestClient, three: list[dict], body: dict, code: str
):
    adapter = three[0]["id"]
    client.patch(f"/adapters/{adapter}", json={"tags": {"keep": "me"}})
    response = client.patch(f"/adapters/{adapter}", json=body)
    assert (response.status_code, response.json()["code"]) == (422, code), response.text
    assert client.get(f"/adapters/{adapter}").json()["tags"] == {"keep": "me"}


def test_the_tag_count_limit_counts_what_is_already_there(client: TestClient, three: list[dict]):
    adapter = three[0]["id"]
    assert client.patch(f"/adapters/{adapter}", json={
        "tags": {f"a{i}": "v" for i in range(50)}}).status_code == 200
    more = client.patch(f"/adapters/{adapter}", json={"tags": {"one-more": "v"}})
    assert (more.status_code, more.json()["code"]) == (422, "invalid_tag")


def test_filtering_by_two_tags_returns_exactly_the_matching_adapters(
    client: TestClient, three: list[dict]
):
    alpha, beta, gamma = (a["id"] for a in three)
    client.patch(f"/adapters/{alpha}", json={"tags": {"team": "search", "stage": "prod"}})
    client.patch(f"/adapters/{beta}", json={"tags": {"team": "search", "stage": "dev"}})
    client.patch(f"/adapters/{gamma}", json={"tags": {"team": "ads", "stage": "prod"}})

    def ids(*tags: str) -> set[str]:
        response = client.get("/adapters", params={"tag": list(tags)})
        assert response.status_code == 200, response.text
        return {a["id"] for a in response.json()["items"]}

    assert ids("team:search", "stage:prod") == {alpha}
    assert ids("team:search") == {alpha, beta}
    assert ids("stage:prod") == {alpha, gamma}
    assert ids("team:ads", "stage:dev") == set()
    assert ids("stage") == {alpha, beta, gamma}  # a bare key: has the tag
    assert ids("team:search", "stage:prod", "missing") == set()
    bad = client.get("/adapters", params={"tag": "no such key!:x"})
    assert (bad.status_code, bad.json()["code"]) == (422, "invalid_tag")


def set_metrics(state: AppState, adapter_id: str, metrics: dict | None) -> None:
    with state.sessions() as session:
        session.get(models.Adapter, adapter_id).metrics = metrics
        session.commit()


def test_ordering_by_a_final_metric_pages_exactly_with_nulls_last(
    client: TestClient, state: AppState, peft_folder: Path
):
    files = pair(peft_folder)
    losses = [0.9, None, 0.1, 0.5, "n/a", 0.5, 2]
    made = []
    for i, loss in enumerate(losses):
        adapter = import_tar(client, files, name=f"m{i}").json()
        set_metrics(state, adapter["id"], None if loss is None else {"loss": loss, "steps": 40})
        made.append(adapter["id"])
    # Numbers ascending (ties: newest first); no numeric loss (absent, a string): last,
    # newest first.
    numeric = sorted((loss, -i) for i, loss in enumerate(losses) if isinstance(loss, int | float))
    rest = sorted((i for i, loss in enumerate(losses) if not isinstance(loss, int | float)),
                  reverse=True)
    expected = [made[-i] for _, i in numeric] + [made[i] for i in rest]

    def walk(order_by: str, limit: int) -> list[str]:
        seen, cursor = [], None
        while True:
            params = {"order_by": order_by, "limit": limit, **({"cursor": cursor} if cursor else {})}
            page = client.get("/adapters", params=params)
            assert page.status_code == 200, page.text
            seen += [a["id"] for a in page.json()["items"]]
            cursor = page.json()["next_cursor"]
            if cursor is None:
                return seen

    for limit in (1, 2, 3, 50):
        assert walk("metrics.loss", limit) == expected
    descending = [made[-i] for _, i in sorted(numeric, key=lambda p: (-p[0], p[1]))]
    assert walk("-metrics.loss", 2) == descending + [made[i] for i in rest]
    assert walk("created_at", 50) == list(reversed(made))
    bad = client.get("/adapters", params={"order_by": "name"})
    assert (bad.status_code, bad.json()["code"]) == (422, "invalid_order_by")
    forged = client.get("/adapters", params={"order_by": "metrics.loss", "cursor": "WzEsMl0"})
    assert (forged.status_code, forged.json()["code"]) == (422, "invalid_cursor")

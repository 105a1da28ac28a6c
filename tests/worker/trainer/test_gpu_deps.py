"""The GPU check runs on lent machines that reach no package index: every third-party package
the trainer, its GPU tests and bench/gpu_train.py import must be on those machines already or
be among the wheels bench/gpu_wheels.sh fetches for the call to carry.

Read from the import statements (the project's own modules followed), so it needs no GPU.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

from tests import REPO

ROOT = REPO
ENTRY_POINTS = [ROOT / "bench" / "gpu_train.py", ROOT / "bench" / "real_models.py",
                ROOT / "bench" / "distributed.py",
                *sorted((ROOT / "tests" / "worker" / "trainer").glob("*.py"))]
PROJECT_PACKAGES = {"service", "db", "api", "cli", "tests", "bench", "worker", "loraplane_client"}
# Where each project package lives (the SDK is a distribution of its own, clients/python).
SOURCE_ROOTS = {"loraplane_client": ROOT / "clients" / "python"}

# Import names of the packages the lent GPU image holds that this check relies on (the device
# tool's KINDS.md, "Python packages already there", as read on 2026-11-17).
ON_THE_DEVICE = {"torch", "transformers", "peft", "safetensors", "tokenizers", "accelerate",
                 "huggingface_hub", "numpy", "yaml", "pytest", "psutil", "packaging"}
# Distribution name -> import name, for the wheels gpu_wheels.sh fetches.
IMPORT_NAME = {"pydantic_core": "pydantic_core", "annotated-types": "annotated_types",
               "typing-inspection": "typing_inspection", "typing_extensions": "typing_extensions"}


def carried() -> set[str]:
    script = (ROOT / "bench" / "gpu_wheels.sh").read_text()
    dists = re.search(r"^for dist in (.+?); do$", script, re.MULTILINE)
    assert dists, "gpu_wheels.sh no longer lists its wheels in one `for dist in …` line"
    return {IMPORT_NAME.get(d, d) for d in dists.group(1).split()}


def module_file(name: str) -> Path | None:
    base = SOURCE_ROOTS.get(name.split(".")[0], ROOT).joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def third_party_imports() -> dict[str, set[str]]:
    """Top-level third-party names imported, each with the files that import it."""
    found: dict[str, set[str]] = {}
    todo, seen = list(ENTRY_POINTS), set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in PROJECT_PACKAGES:
                    if (own := module_file(name)) is not None:
                        todo.append(own)
                elif top not in sys.stdlib_module_names and top != "__future__":
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def test_the_gpu_check_needs_nothing_the_device_lacks() -> None:
    imports = third_party_imports()
    assert {"torch", "peft", "pydantic", "omegaconf"} <= imports.keys()  # the walk got far
    missing = {name: files for name, files in imports.items()
               if name not in ON_THE_DEVICE | carried()}
    assert not missing, f"imported on the GPU path but neither on the device nor carried: {missing}"

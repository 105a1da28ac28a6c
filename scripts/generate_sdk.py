#!/usr/bin/env python3
"""Regenerate the Python SDK (clients/python/loraplane_client) from the committed openapi.json.

    python scripts/generate_sdk.py            # regenerate in place (`make sdk`)
    python scripts/generate_sdk.py --check    # exit 1 if the committed SDK is stale

openapi-python-client (pinned in pyproject's `test` extra) writes a fresh package into a
scratch folder; its post-hooks format it with ruff under clients/python/pyproject.toml's
settings. Then every generated file of the committed package is replaced and the hand-written
modules, HANDWRITTEN below, are kept as they are: a generated file may never take one of
their names. `clients/python/templates/` overrides generator templates (the package
`__init__` also exports the hand-written layer).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CLIENT = REPO / "clients" / "python"
PACKAGE = CLIENT / "loraplane_client"
SPEC = REPO / "openapi.json"
CONFIG = CLIENT / "openapi-python-client.yaml"
TEMPLATES = CLIENT / "templates"
# Paths relative to PACKAGE that the generator does not own.
HANDWRITTEN = frozenset({"ext.py", "fetch.py", "transfer.py", "py.typed"})
_SKIP_PARTS = {"__pycache__", ".ruff_cache", ".mypy_cache", ".pytest_cache"}


def _tool(name: str) -> str:
    """`name` from this interpreter's virtualenv, else from PATH."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if found is None:
        raise SystemExit(f"{name} not found: install the test extra (pip install -e '.[test]')")
    return found


def generate(scratch: Path, spec: Path = SPEC, *, verbose: bool = False) -> Path:
    """Run the generator on `spec`; return the package folder it wrote under `scratch`.

    `verbose` prints the generator's warnings: the media types it cannot model (YAML job
    specs, JSONL datasets, tar archives) are expected; ext.py covers those by hand."""
    project = scratch / "python"
    project.mkdir(parents=True)
    shutil.copy(CLIENT / "pyproject.toml", project / "pyproject.toml")  # ruff's settings
    out = project / PACKAGE.name
    bin_dir = str(Path(_tool("ruff")).parent)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    command = [_tool("openapi-python-client"), "generate", "--path", str(spec),
               "--meta", "none", "--output-path", str(out), "--config", str(CONFIG),
               "--custom-template-path", str(TEMPLATES)]
    result = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True,
                            check=False)
    if result.returncode != 0 or not (out / "client.py").exists():
        raise SystemExit(f"openapi-python-client failed:\n{result.stdout}\n{result.stderr}")
    log = result.stdout + result.stderr
    if "ruff failed" in log or "is not in PATH" in log:
        raise SystemExit(f"a post-hook failed:\n{log}")
    if verbose:
        warnings = [line for line in (result.stdout + result.stderr).splitlines()
                    if line.startswith(("WARNING", "Unsupported", "Cannot parse"))]
        print("\n".join(warnings) or "no generator warnings")
    return out


def files(folder: Path, *, generated_only: bool = True) -> dict[str, bytes]:
    """Relative path → bytes of the files under `folder` (caches left out)."""
    result = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if not path.is_file() or _SKIP_PARTS & set(rel.parts):
            continue
        if generated_only and rel.as_posix() in HANDWRITTEN:
            continue
        result[rel.as_posix()] = path.read_bytes()
    return result


def differences(fresh: Path) -> list[str]:
    """Generated files that differ between `fresh` and the committed package."""
    new, old = files(fresh), files(PACKAGE)
    return sorted(name for name in new.keys() | old.keys() if new.get(name) != old.get(name))


def replace_generated(fresh: Path) -> None:
    """Swap the committed package's generated files for `fresh`'s; keep HANDWRITTEN."""
    new = files(fresh, generated_only=False)
    clash = HANDWRITTEN & new.keys()
    if clash:
        raise SystemExit(f"the generator now writes {sorted(clash)}, which are hand-written: "
                         "rename the hand-written module(s)")
    for name in files(PACKAGE):
        (PACKAGE / name).unlink()
    for folder in sorted((p for p in PACKAGE.rglob("*") if p.is_dir()), reverse=True):
        if not any(f.is_file() for f in folder.rglob("*")):
            shutil.rmtree(folder)
    for name, data in new.items():
        target = PACKAGE / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="loraplane-sdk-") as scratch:
        fresh = generate(Path(scratch), verbose=not args.check)
        if args.check:
            stale = differences(fresh)
            if stale:
                shown = ", ".join(stale[:10]) + (" …" if len(stale) > 10 else "")
                print(f"the SDK in {PACKAGE.relative_to(REPO)} is out of date ({shown}): "
                      "run `make sdk`", file=sys.stderr)
                return 1
            return 0
        PACKAGE.mkdir(parents=True, exist_ok=True)
        replace_generated(fresh)
    missing = [name for name in HANDWRITTEN if not (PACKAGE / name).exists()]
    if missing:
        print(f"warning: hand-written {missing} missing from {PACKAGE}", file=sys.stderr)
    print(f"regenerated {PACKAGE.relative_to(REPO)} from {SPEC.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

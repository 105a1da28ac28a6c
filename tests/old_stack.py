"""Older releases of the libraries our users' clients pin (RLinf: peft 0.11.1 on transformers
4.x), installed from PyPI into a directory of their own, to import ahead of the project's
environment in a child process.

`pip install --no-deps --target` installs only the named wheels; everything else (torch,
numpy, safetensors, accelerate) comes from the project's venv. The directory is kept under
the system temp dir, keyed by the requirements, so a second run reuses it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

# transformers 4.46 checks at import that tokenizers and huggingface_hub are versions it knows.
OLD_STACK = (
    "transformers==4.46.3",
    "tokenizers==0.20.3",
    "huggingface_hub==0.26.5",
    "peft==0.11.1",
)


def installed(requirements: tuple[str, ...] = OLD_STACK) -> Path:
    """The directory holding `requirements`, installed on first use (skip if PyPI is away)."""
    key = hashlib.sha256(json.dumps([sys.version_info[:2], *requirements]).encode()).hexdigest()
    root = Path(tempfile.gettempdir()) / "loraplane-test-packages"
    root.mkdir(exist_ok=True)
    target = root / key[:16]
    with open(root / f"{key[:16]}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # xdist workers or two runs: one installs
        if not (target / ".complete").is_file():
            staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=root))
            command = [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--only-binary=:all:",
                "--disable-pip-version-check",
                "--target",
                str(staging),
                *requirements,
            ]
            result = subprocess.run(
                command, check=False, capture_output=True, text=True, timeout=600
            )
            if result.returncode != 0:
                pytest.fail(f"pip could not install {requirements}:\n{result.stderr[-3000:]}")
            (staging / ".complete").write_text("\n".join(requirements) + "\n")
            shutil.rmtree(target, ignore_errors=True)  # a broken leftover
            os.rename(staging, target)
    return target


def run_python(code: str, *, first_on_path: Path | None = None, timeout: float = 300) -> str:
    """Run `code` in a fresh interpreter of this venv, `first_on_path` ahead of it; return
    stdout, failing the test with stderr if the child fails."""
    env = {
        **os.environ,
        "PYTHONNOUSERSITE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    }
    prelude = f"import sys; sys.path.insert(0, {str(first_on_path)!r})\n" if first_on_path else ""
    result = subprocess.run(
        [sys.executable, "-c", prelude + code],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=tempfile.gettempdir(),
    )
    if result.returncode != 0:
        pytest.fail(f"child python failed ({result.returncode}):\n{result.stderr[-4000:]}")
    return result.stdout

"""The test suite; its folders mirror the packages (see docs/architecture.md)."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

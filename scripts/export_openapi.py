#!/usr/bin/env python3
"""Write the API's OpenAPI document to `openapi.json` (the SDK is generated from that file).

    python scripts/export_openapi.py [OUT]        # default: openapi.json at the repo root
    python scripts/export_openapi.py --check      # exit 1 if the committed file is stale

The output is deterministic: keys sorted, two-space indent, one trailing newline, and the
app's own fixed version; it does not depend on the environment (no settings are read, no
database is touched). `make sdk` runs this, then scripts/generate_sdk.py.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "openapi.json"


def openapi_document() -> dict:
    """`create_app().openapi()` for an app built on throw-away settings (never started)."""
    sys.path.insert(0, str(REPO))
    from api.app import create_app
    from service.settings import Settings

    with tempfile.TemporaryDirectory() as scratch:
        settings = Settings(data_dir=Path(scratch), database_url="sqlite://")
        return create_app(settings, migrate=False).openapi()


def render(document: dict) -> str:
    """The committed form of the document."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    text = render(openapi_document())
    if args.check:
        if not args.out.exists() or args.out.read_text() != text:
            print(f"{args.out} is out of date: run `make sdk`", file=sys.stderr)
            return 1
        return 0
    args.out.write_text(text)
    print(f"wrote {args.out} ({len(text)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

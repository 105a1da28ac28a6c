"""Run in .venv-vllm by test_vllm.py: the plugin's resolver outside a vLLM server, against a
live loraplane (LORAPLANE_SERVER, LORAPLANE_TOKEN). Prints one JSON object of outcomes.

    python plugin_checks.py ALIAS_REF CACHE_DIR
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from loraplane_client import connect
from loraplane_vllm import AdapterRefused, LoraplaneResolver


class ServingModels:
    """The two members of vLLM's OpenAIServingModels that AliasRefresh uses."""

    def __init__(self) -> None:
        self.lora_requests: dict[str, object] = {}
        self.unloaded: list[str] = []

    async def unload_lora_adapter(self, request) -> str:
        del self.lora_requests[request.lora_name]
        self.unloaded.append(request.lora_name)
        return "ok"


async def main(ref: str, cache: Path) -> dict:
    outcomes: dict = {}
    bare = LoraplaneResolver(cache_dir=cache)  # no AliasRefresh in this process
    try:
        await bare.resolve_lora("base", ref)
        outcomes["without_middleware"] = "served"
    except AdapterRefused as exc:
        outcomes["without_middleware"] = [int(exc.http_status), exc.message]

    resolver = LoraplaneResolver(cache_dir=cache)
    resolver.alias_refresh_installed = True
    request = await resolver.resolve_lora("base", ref)
    models = ServingModels()
    models.lora_requests[ref] = request
    await resolver.refresh(models, ref)  # the alias has not moved: stays loaded
    outcomes["unmoved_kept"] = ref in models.lora_requests
    # loraplane unreachable: the alias cannot be confirmed, so the name is dropped
    resolver._alias_client = connect("http://127.0.0.1:9", "t")
    await resolver.refresh(models, ref)
    outcomes["unreachable_unloaded"] = models.unloaded == [ref]
    try:
        resolver._client = connect("http://127.0.0.1:9", "t")
        await resolver.resolve_lora("base", ref)
        outcomes["unreachable_resolve"] = "served"
    except AdapterRefused as exc:
        outcomes["unreachable_resolve"] = [int(exc.http_status), exc.message]
    return outcomes


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], Path(sys.argv[2])))))

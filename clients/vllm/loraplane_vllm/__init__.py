"""loraplane's plugin for vLLM: a LoRA resolver for `model="name@alias"`, `"name:version"`
and `"ad_…"`, and the middleware that makes alias moves reach a running server.

    VLLM_ALLOW_RUNTIME_LORA_UPDATING=1 LORAPLANE_SERVER=… LORAPLANE_TOKEN=… \
    vllm serve BASE --enable-lora --max-lora-rank 64 --middleware loraplane_vllm.AliasRefresh

vLLM calls `register()` (entry point group `vllm.general_plugins`) in each of its processes.
"""

from __future__ import annotations

import logging
import os

from .resolver import AdapterRefused, LoraplaneResolver, Reference, parse_reference

__all__ = ["AdapterRefused", "AliasRefresh", "LoraplaneResolver", "Reference",
           "current_resolver", "parse_reference", "register"]

RESOLVER_NAME = "loraplane"
log = logging.getLogger("vllm.loraplane")  # under vLLM's logger, so its handler prints it
_resolver: LoraplaneResolver | None = None


def current_resolver() -> LoraplaneResolver:
    """This process's resolver (the one registered with vLLM)."""
    global _resolver
    if _resolver is None:
        _resolver = LoraplaneResolver()
    return _resolver


def register() -> None:
    """Register the resolver with vLLM's `LoRAResolverRegistry` (idempotent)."""
    from vllm.lora.resolver import LoRAResolverRegistry

    if RESOLVER_NAME in LoRAResolverRegistry.get_supported_resolvers():
        return
    LoRAResolverRegistry.register_resolver(RESOLVER_NAME, current_resolver())
    if os.environ.get("VLLM_ALLOW_RUNTIME_LORA_UPDATING", "").strip().lower() not in ("1", "true"):
        log.warning("loraplane: VLLM_ALLOW_RUNTIME_LORA_UPDATING is not set, so vLLM never "
                    "asks resolvers: set it to 1 to serve loraplane adapters by reference")


def __getattr__(name: str):  # AliasRefresh imports vLLM's ASGI-side modules only when asked
    if name == "AliasRefresh":
        from .middleware import AliasRefresh

        return AliasRefresh
    raise AttributeError(name)

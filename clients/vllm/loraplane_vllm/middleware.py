"""`AliasRefresh`: the ASGI middleware (vLLM's `--middleware loraplane_vllm.AliasRefresh`) that
makes a move of `name@alias` reach a running vLLM server.

vLLM answers a `model` it has already loaded without asking any resolver again, so before such
a request reaches vLLM this asks loraplane where the alias points now (one small GET, only
for alias names the plugin has loaded) and, if it moved, unloads the name: vLLM then resolves
it again and loads the new version, under a new `lora_int_id` and a new path, so nothing of
the old one (weights, prefix-cache blocks) answers the request.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .resolver import LoraplaneResolver

log = logging.getLogger("vllm.loraplane")  # under vLLM's logger, so its handler prints it

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class AliasRefresh:
    """Pure ASGI middleware; vLLM adds it with `app.add_middleware` when given by
    `--middleware`. Requests for anything but an alias the plugin loaded pass untouched."""

    def __init__(self, app: ASGIApp):
        from . import current_resolver

        self.app = app
        self.resolver: LoraplaneResolver = current_resolver()
        self.resolver.alias_refresh_installed = True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        app_state = getattr(scope.get("app"), "state", None)
        self._learn_limits(app_state)
        aliases = self.resolver.alias_names
        if not aliases or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        body, receive = await _buffered(receive)
        model = _model_of(body)
        models = getattr(app_state, "openai_serving_models", None)
        if model in aliases and models is not None:
            await self.resolver.refresh(models, model)
        await self.app(scope, receive, send)

    def _learn_limits(self, app_state: Any) -> None:
        if self.resolver.max_lora_rank is not None or app_state is None:
            return
        lora_config = getattr(getattr(app_state, "vllm_config", None), "lora_config", None)
        if lora_config is not None:
            self.resolver.max_lora_rank = lora_config.max_lora_rank


def _is_json(scope: Scope) -> bool:
    for key, value in scope.get("headers") or ():
        if key == b"content-type":
            return b"json" in value.lower()
    return False


async def _buffered(receive: Receive) -> tuple[bytes, Receive]:
    """The whole request body, and a `receive` that hands the same messages on."""
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            break
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")

    async def replay() -> Message:
        if messages:
            return messages.pop(0)
        return await receive()

    return body, replay


def _model_of(body: bytes) -> str | None:
    try:
        document = json.loads(body)
    except ValueError:
        return None
    model = document.get("model") if isinstance(document, dict) else None
    return model if isinstance(model, str) else None

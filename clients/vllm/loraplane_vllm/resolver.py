"""vLLM's LoRA resolver for loraplane references, and the bookkeeping that follows alias moves.

vLLM (0.32) asks its resolvers for a `model` it does not know yet and keeps what they return
in `OpenAIServingModels.lora_requests`, under the name the client sent, for good. A pinned
reference (`ad_…`, `name:version`) names the same bytes forever, so that is right for it; the
version behind `name@alias` can change, so the resolver remembers which adapter each alias
name was resolved to, and `AliasRefresh` (middleware.py) asks loraplane again on every request
for such a name and unloads it once the alias points elsewhere.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import re
from collections import Counter
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any

import httpx
from loraplane_client import ApiError, ChecksumMismatch, connect, download_adapter, resolve_adapter
from loraplane_client.api.aliases import get_alias
from loraplane_client.ext import _ADAPTER_ID, _NAME_ALIAS, _NAME_VERSION, ok
from loraplane_client.models import Adapter, AdapterKind
from vllm.exceptions import GracefulHTTPError
from vllm.lora.request import LoRARequest
from vllm.lora.resolver import LoRAResolver

log = logging.getLogger("vllm.loraplane")  # under vLLM's logger, so its handler prints it

CACHE_ENV = "LORAPLANE_VLLM_CACHE"
BASE_MODEL_ENV = "LORAPLANE_VLLM_BASE_MODEL"
DEFAULT_CACHE = "~/.cache/loraplane-vllm"
ALIAS_TIMEOUT_SECONDS = 5.0
_FOLDER_KEY = re.compile(r"[0-9a-f]{64}|ad_[0-9a-z]{26}")


class AdapterRefused(GracefulHTTPError):
    """A reference vLLM must not serve; the client gets `status` and the message (vLLM's
    exception handler renders it as its usual `{"error": {...}}` body)."""

    def __init__(self, status: HTTPStatus, message: str):
        super().__init__(message, status)


@dataclass(frozen=True)
class Reference:
    """A `model` the plugin answers for: `ad_…`, `name:version` or `name@alias`."""

    text: str
    name: str | None = None
    alias: str | None = None

    @property
    def moves(self) -> bool:
        """Whether the adapter behind it can change (`name@alias`)."""
        return self.alias is not None


def parse_reference(text: str) -> Reference | None:
    """The reference `text` is, or None when it is none of the plugin's forms (another
    resolver, or vLLM's 404, answers it). A bare name is not taken: it could be a typo of the
    served model's own name."""
    if _ADAPTER_ID.fullmatch(text) or _NAME_VERSION.fullmatch(text):
        return Reference(text)
    if m := _NAME_ALIAS.fullmatch(text):
        return Reference(text, name=m.group(1), alias=m.group(2))
    return None


def cache_dir_from_environment() -> Path:
    """`LORAPLANE_VLLM_CACHE`, else ~/.cache/loraplane-vllm."""
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE).expanduser()


class LoraplaneResolver(LoRAResolver):
    """Resolves loraplane references into PEFT folders kept by digest in `cache_dir`."""

    def __init__(self, client: Any | None = None, cache_dir: Path | None = None,
                 base_model: str | None = None):
        self._client = client
        # The base model adapters must have been trained on (their registry `base_model`):
        # LORAPLANE_VLLM_BASE_MODEL; unset, any adapter vLLM can load is served.
        self.base_model = base_model or os.environ.get(BASE_MODEL_ENV) or None
        self._alias_client: Any | None = None
        self.cache_dir = Path(cache_dir) if cache_dir is not None else cache_dir_from_environment()
        self.alias_refresh_installed = False  # set by AliasRefresh when vLLM builds its app
        self.max_lora_rank: int | None = None  # this server's --max-lora-rank, once known
        self._alias_targets: dict[str, str] = {}  # `name@alias` -> adapter id it was loaded as
        self._loads: Counter[tuple[str, str]] = Counter()

    @property
    def client(self) -> Any:
        """The SDK client (LORAPLANE_SERVER, LORAPLANE_TOKEN), made on first use."""
        if self._client is None:
            self._client = connect()
        return self._client

    # ------------------------------------------------------------------ vLLM's interface

    async def resolve_lora(self, base_model_name: str, lora_name: str) -> LoRARequest | None:
        """Fetch the adapter `lora_name` names (sha256-verified, cached by digest) and return
        the request vLLM loads it with; None for names that are not loraplane references."""
        ref = parse_reference(lora_name)
        if ref is None:
            return None
        if ref.moves and not self.alias_refresh_installed:
            raise AdapterRefused(HTTPStatus.BAD_REQUEST, (
                f"{lora_name}: serving an alias needs the loraplane middleware, or a move of "
                "the alias would never reach this server; start vLLM with --middleware "
                "loraplane_vllm.AliasRefresh (or ask for name:version or ad_…)"))
        adapter = await asyncio.to_thread(self._lookup, ref)
        self._check_servable(adapter, lora_name)
        folder = await asyncio.to_thread(self._fetch, adapter, lora_name)
        if ref.moves:
            self._alias_targets[lora_name] = adapter.id
        self._loads[(lora_name, adapter.id)] += 1
        log.info("loraplane: %s is %s (%s:%d), from %s", lora_name, adapter.id, adapter.name,
                 adapter.version, folder)
        # vLLM tells adapters of one batch apart by `lora_name` (LoRARequest's __eq__/__hash__),
        # so each resolution gets its own: the old and the new version of a moved alias can
        # share a batch while the old one's last requests finish. The client's `model` stays
        # the key of OpenAIServingModels.lora_requests; responses name the version served.
        return LoRARequest(lora_name=self._engine_name(lora_name, adapter), lora_int_id=1,
                           lora_path=str(folder))  # vLLM replaces the id with a fresh one

    # -------------------------------------------------------------- following alias moves

    @property
    def alias_names(self) -> frozenset[str]:
        """The `name@alias` references resolved so far (the ones a move can make stale)."""
        return frozenset(self._alias_targets)

    async def current_adapter_id(self, lora_name: str) -> str:
        """The adapter `name@alias` points to now (one small GET)."""
        ref = parse_reference(lora_name)
        assert ref is not None and ref.moves, lora_name
        if self._alias_client is None:  # its own client: a short timeout, on vLLM's event loop
            self._alias_client = connect(timeout=ALIAS_TIMEOUT_SECONDS)
        answer = await get_alias.asyncio_detailed(ref.name, ref.alias, client=self._alias_client)
        return ok(answer).adapter_id

    async def refresh(self, models: Any, lora_name: str) -> None:
        """Unload `lora_name` from vLLM's `OpenAIServingModels` if its alias has moved since it
        was loaded, or if loraplane cannot say where it points now: never serve a stale one.
        vLLM then asks the resolvers again, which load the version the alias names now."""
        loaded = self._alias_targets.get(lora_name)
        if loaded is None:
            return
        try:
            current: str | None = await self.current_adapter_id(lora_name)
        except (ApiError, httpx.HTTPError) as exc:
            log.warning("loraplane: cannot confirm where %s points (%s); resolving it again",
                        lora_name, exc)
            current = None
        if current == loaded and lora_name in models.lora_requests:
            return
        self._alias_targets.pop(lora_name, None)
        if lora_name in models.lora_requests:
            from vllm.entrypoints.serve.lora.protocol import UnloadLoRAAdapterRequest

            await models.unload_lora_adapter(UnloadLoRAAdapterRequest(lora_name=lora_name))
            log.info("loraplane: %s moved from %s to %s; unloaded it", lora_name, loaded,
                     current)

    # ----------------------------------------------------------------------- the parts

    def _lookup(self, ref: Reference) -> Adapter:
        try:
            return resolve_adapter(self.client, ref.text)
        except ApiError as exc:
            raise _refusal(ref.text, exc) from None
        except httpx.TransportError as exc:
            raise AdapterRefused(HTTPStatus.SERVICE_UNAVAILABLE,
                                 f"{ref.text}: cannot reach loraplane ({exc})") from None

    def _check_servable(self, adapter: Adapter, lora_name: str) -> None:
        label = f"{lora_name} ({adapter.id}, {adapter.name}:{adapter.version})"
        if adapter.kind != AdapterKind.LORA:
            raise AdapterRefused(HTTPStatus.UNPROCESSABLE_ENTITY, (
                f"{label} is a {adapter.kind} fine-tuned model, not a LoRA adapter: "
                "serve it as a base model instead"))
        if self.base_model is not None and adapter.base_model != self.base_model:
            raise AdapterRefused(HTTPStatus.UNPROCESSABLE_ENTITY, (
                f"{label} was trained on {adapter.base_model}; this server serves "
                f"{self.base_model} ({BASE_MODEL_ENV})"))
        verdict = (adapter.to_dict().get("serving") or {}).get("vllm")
        if isinstance(verdict, dict) and verdict.get("ok") is False:
            reasons = "; ".join(str(r) for r in verdict.get("reasons") or []) or "no reason given"
            raise AdapterRefused(HTTPStatus.UNPROCESSABLE_ENTITY,
                                 f"{label} cannot be served by vLLM: {reasons}")
        needed = adapter.rank
        if isinstance(verdict, dict) and isinstance(verdict.get("max_lora_rank"), int):
            needed = verdict["max_lora_rank"]
        if self.max_lora_rank is not None and isinstance(needed, int) \
                and needed > self.max_lora_rank:
            raise AdapterRefused(HTTPStatus.UNPROCESSABLE_ENTITY, (
                f"{label} has LoRA rank {adapter.rank}; this server was started with "
                f"--max-lora-rank {self.max_lora_rank}, it needs --max-lora-rank {needed}"))

    def _fetch(self, adapter: Adapter, lora_name: str) -> Path:
        """The adapter's PEFT folder under `cache_dir/<digest>`: files already there are kept
        if their sha256 matches, others are downloaded (resumably) and verified."""
        key = adapter.digest if isinstance(adapter.digest, str) else adapter.id
        if not _FOLDER_KEY.fullmatch(key):
            key = adapter.id
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        folder = self.cache_dir / key
        try:
            # Servers sharing a cache take turns per adapter.
            with open(self.cache_dir / f".{key}.lock", "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                download_adapter(self.client, adapter, folder)
        except ChecksumMismatch as exc:
            raise AdapterRefused(HTTPStatus.UNPROCESSABLE_ENTITY, (
                f"{lora_name} ({adapter.id}) failed its sha256 check and is not served: "
                f"{exc}")) from None
        except ApiError as exc:
            raise _refusal(lora_name, exc) from None
        except httpx.HTTPError as exc:
            raise AdapterRefused(HTTPStatus.SERVICE_UNAVAILABLE,
                                 f"{lora_name}: downloading {adapter.id} failed ({exc})") from None
        return folder

    def _engine_name(self, lora_name: str, adapter: Adapter) -> str:
        name = f"{lora_name}={adapter.name}:{adapter.version}"
        count = self._loads[(lora_name, adapter.id)]
        return name if count == 1 else f"{name}#{count}"


def _refusal(ref: str, exc: ApiError) -> AdapterRefused:
    if exc.status == 404:
        return AdapterRefused(HTTPStatus.NOT_FOUND, f"loraplane has no adapter {ref}: {exc.detail}")
    if exc.status in (401, 403):
        return AdapterRefused(HTTPStatus.BAD_GATEWAY, (
            f"{ref}: loraplane refused this vLLM server's token ({exc.status} {exc.code}); "
            "set LORAPLANE_TOKEN where vLLM runs"))
    if exc.status in (400, 422):
        return AdapterRefused(HTTPStatus.BAD_REQUEST, f"{ref}: {exc.detail}")
    return AdapterRefused(HTTPStatus.BAD_GATEWAY, f"{ref}: loraplane answered {exc}")

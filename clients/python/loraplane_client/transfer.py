"""Hand-written: moving adapters in and out of a registry — import a PEFT folder or tar,
tag and describe adapters, export and import a project's whole registry — with progress."""

from __future__ import annotations

import os
import tarfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from .ext import AnyClient, _check, resolve_adapter
from .fetch import Progress
from .models.adapter import Adapter
from .models.registry_import import RegistryImport

__all__ = ["describe_adapter", "export_registry", "import_adapter", "import_registry",
           "tag_adapter"]

CHUNK = 1 << 20
TAR = "application/x-tar"
PEFT_FILES = ("adapter_config.json", "adapter_model.safetensors")
_PICKLED = ("adapter_model.bin", "adapter_model.pt", "adapter_model.pth")


def _folder_entries(folder: Path) -> list[tuple[str, Path]]:
    """The PEFT pair of a folder `save_pretrained` wrote (its README and other files stay)."""
    missing = [n for n in PEFT_FILES if not (folder / n).is_file()]
    if missing:
        pickled = [n for n in _PICKLED if (folder / n).is_file()]
        hint = (f"; {pickled[0]} is a pickle, which the registry never accepts: save it again "
                "with safe_serialization=True (the default of peft's save_pretrained)"
                if pickled else "")
        raise ValueError(f"{folder} has no {' or '.join(missing)}{hint}")
    return [(name, folder / name) for name in PEFT_FILES]


def _tar_of(entries: list[tuple[str, Path]]) -> tuple[int, Iterator[bytes]]:
    """An uncompressed tar of local files, as (its size, its bytes streamed file by file)."""
    headers = []
    total = 0
    for name, path in entries:
        info = tarfile.TarInfo(name)
        info.size, info.mode = path.stat().st_size, 0o644
        info.mtime = int(path.stat().st_mtime)
        header = info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
        headers.append((header, path, info.size))
        total += len(header) + info.size + (-info.size % tarfile.BLOCKSIZE)
    trailer = 2 * tarfile.BLOCKSIZE
    trailer += -(total + trailer) % tarfile.RECORDSIZE

    def chunks() -> Iterator[bytes]:
        for header, path, size in headers:
            yield header
            yield from _file_chunks(path)
            yield tarfile.NUL * (-size % tarfile.BLOCKSIZE)
        yield tarfile.NUL * trailer

    return total + trailer, chunks()


def _file_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk


def _counted(chunks: Iterator[bytes], total: int, progress: Progress | None) -> Iterator[bytes]:
    sent = 0
    if progress:
        progress(0, total)
    for chunk in chunks:
        yield chunk
        sent += len(chunk)
        if progress:
            progress(sent, total)


def _upload(client: AnyClient, url: str, chunks: Iterator[bytes], size: int,
            progress: Progress | None, params: Any = None) -> tuple[int, dict[str, Any]]:
    http = client.get_httpx_client()
    response = http.post(url, params=params, content=_counted(chunks, size, progress),
                         headers={"Content-Type": TAR, "Content-Length": str(size)},
                         timeout=None)
    _check(response)
    return response.status_code, response.json()


def import_adapter(
    client: AnyClient,
    source: str | os.PathLike[str],
    *,
    name: str,
    base_model: str,
    description: str | None = None,
    tags: Mapping[str, str] | None = None,
    progress: Progress | None = None,
) -> tuple[Adapter, bool]:
    """Import a PEFT folder (its adapter_config.json + adapter_model.safetensors) or a tar of
    one as the next version of `name`; returns the adapter and whether it is new (False: `name`
    already held these exact bytes, and that version is returned). `progress(sent, total)`."""
    path = Path(source)
    if path.is_dir():
        size, chunks = _tar_of(_folder_entries(path))
    elif path.is_file():
        size, chunks = path.stat().st_size, _file_chunks(path)
    else:
        raise FileNotFoundError(f"no folder or tar archive at {path}")
    params: list[tuple[str, str]] = [("name", name), ("base_model", base_model)]
    if description is not None:
        params.append(("description", description))
    params += [("tag", f"{k}:{v}") for k, v in (tags or {}).items()]
    status, body = _upload(client, "/adapters", chunks, size, progress, params)
    return Adapter.from_dict(body), status == 201


def _patch(client: AnyClient, ref: str, body: dict[str, Any]) -> Adapter:
    adapter = resolve_adapter(client, ref)
    response = client.get_httpx_client().patch(f"/adapters/{adapter.id}", json=body)
    return Adapter.from_dict(_check(response).json())


def tag_adapter(client: AnyClient, ref: str, tags: Mapping[str, str] | None = None,
                remove: Sequence[str] = ()) -> Adapter:
    """Set tags (`key: value`) and drop the keys in `remove`; other tags stay."""
    changes: dict[str, str | None] = {**{k: None for k in remove}, **(tags or {})}
    return _patch(client, ref, {"tags": changes})


def describe_adapter(client: AnyClient, ref: str, description: str | None) -> Adapter:
    """Set (or with None, clear) an adapter's description."""
    return _patch(client, ref, {"description": description})


def export_registry(client: AnyClient, dest: str | os.PathLike[str],
                    progress: Progress | None = None) -> Path:
    """Stream the project's whole registry (GET /export) into the tar file `dest`."""
    target = Path(dest)
    partial = target.with_name(target.name + ".part")
    http = client.get_httpx_client()
    with http.stream("GET", "/export", timeout=None) as response:
        _check(response)
        received = 0
        with open(partial, "wb") as f:
            for chunk in response.iter_bytes(CHUNK):
                f.write(chunk)
                received += len(chunk)
                if progress:
                    progress(received, 0)
    os.replace(partial, target)
    return target


def import_registry(client: AnyClient, archive: str | os.PathLike[str],
                    progress: Progress | None = None) -> RegistryImport:
    """Restore a registry archive (from `export_registry`) into the caller's project."""
    path = Path(archive)
    _, body = _upload(client, "/import", _file_chunks(path), path.stat().st_size, progress)
    return RegistryImport.from_dict(body)

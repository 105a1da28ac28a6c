"""Files arriving in one request (an imported adapter, a registry archive): read from a tar
stream member by member, each name checked before any of its bytes is read, stored as
blobs; the blobs the request added are removed again when it fails.
"""

from __future__ import annotations

import hashlib
import logging
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol

from sqlalchemy.orm import Session

from service.artifacts import CHUNK_SIZE, ArtifactStore, Blob
from service.errors import ArtifactTooLarge, InvalidArtifact
from service.registry.blobs import collect_garbage
from service.registry.files import validate_file_name
from service.schemas import FileRef

log = logging.getLogger(__name__)


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


@dataclass
class Intake:
    """The blobs one request stores; `discard` removes those it added that no row holds."""

    store: ArtifactStore
    max_file_bytes: int
    added: set[str] = field(default_factory=set)

    def put(self, chunks: Iterable[bytes], *, expected_size: int | None = None,
            expected_sha256: str | None = None) -> Blob:
        """Store one file's bytes, noting whether the blob is new to the store."""
        digest = hashlib.sha256()
        existed: list[bool] = []

        def hashed() -> Iterator[bytes]:
            for chunk in chunks:
                digest.update(chunk)
                yield chunk
            existed.append(self.store.exists(digest.hexdigest()))

        if expected_sha256 is not None and self.store.exists(expected_sha256):
            existed.append(True)
        blob = self.store.put_chunks(
            hashed(), expected_sha256=expected_sha256, max_bytes=self.max_file_bytes,
            expected_size=expected_size,
        )
        if not (existed and existed[0]):
            self.added.add(blob.sha256)
        return blob

    def put_file_ref(self, name: str, chunks: Iterable[bytes], size: int | None) -> FileRef:
        blob = self.put(chunks, expected_size=size)
        return FileRef(name=name, sha256=blob.sha256, size=blob.size)

    def discard(self, session: Session) -> None:
        """After a failure (and its rollback): delete the added blobs no row refers to."""
        if self.added:
            try:
                collect_garbage(session, self.store, self.added)
            finally:
                session.rollback()
        self.added.clear()


@dataclass(frozen=True)
class Member:
    """A regular file of a tar stream: its checked name, size and bytes (read once, in order)."""

    name: str
    size: int
    file: BinaryIO

    def chunks(self) -> Iterator[bytes]:
        return iter(lambda: self.file.read(CHUNK_SIZE), b"")

    def read_all(self, limit: int) -> bytes:
        if self.size > limit:
            raise InvalidArtifact(f"{self.name} is {self.size} bytes; at most {limit} allowed",
                                  code="invalid_archive")
        return self.file.read()


def tar_members(reader: Readable, *, max_file_bytes: int) -> Iterator[Member]:
    """The regular files of an uncompressed tar stream, in order. A name with `..`, an absolute
    one, a link or device, or a pickle format is refused before its bytes are read; `./` at
    the start of names (`tar -C dir .`) is dropped and directory entries are skipped."""
    try:
        with tarfile.open(fileobj=reader, mode="r|") as tar:  # type: ignore[call-overload]
            for info in tar:
                name = info.name.removeprefix("./")
                if info.isdir():
                    if name not in ("", "."):
                        validate_file_name(name.rstrip("/"))
                    continue
                if not info.isreg():
                    raise InvalidArtifact(
                        f"archive member {info.name!r} is a link or a special file; only "
                        "regular files are accepted",
                        code="unsafe_file_name",
                    )
                validate_file_name(name)
                if info.size > max_file_bytes:
                    raise ArtifactTooLarge(
                        f"{name} is {info.size} bytes; the limit is {max_file_bytes} bytes"
                    )
                file = tar.extractfile(info)
                assert file is not None  # a regular file always has its bytes
                yield Member(name, info.size, file)
    except (tarfile.TarError, EOFError) as exc:
        raise InvalidArtifact(f"the body is not a complete tar archive: {exc}",
                              code="invalid_archive") from None


def strip_common_folder(files: list[FileRef]) -> list[FileRef]:
    """`folder/a`, `folder/b` → `a`, `b` when every file lies in the same top folder
    (`tar -cf x.tar my-adapter`)."""
    tops = {f.name.partition("/")[0] for f in files}
    if len(tops) != 1 or any("/" not in f.name for f in files):
        return files
    return [f.model_copy(update={"name": f.name.partition("/")[2]}) for f in files]

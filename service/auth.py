"""Bearer tokens: roles, projects, hashing, verification, bootstrap.

A token reads `lp_<id>_<secret>`. Only the sha256 of the secret is stored; a presented
token is found by its id and its secret compared in constant time. Revocation takes effect
on the next request: every request looks the token up (no cache: a revocation in one API
process holds at once in every other one too). A GET or HEAD looks it up in the transaction
its route then reads in (api/gate.py), so the check costs one statement and no connection of
its own.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
from pathlib import Path

from pydantic import BaseModel
from sqlalchemy import Connection, bindparam, select
from sqlalchemy.orm import Session

from db import models
from db.base import utcnow
from service.errors import InvalidRequest, NotFound, Unauthorized
from service.ids import new_id
from service.paging import newest_first
from service.schemas import NewToken, Page, Role, TokenCreate, TokenInfo

log = logging.getLogger(__name__)

TOKEN_PATTERN = re.compile(r"^lp_(tok_[0-9a-z]{26})_([A-Za-z0-9_-]{20,100})$")
ADMIN_TOKEN_FILE = "admin.token"
WORKER_TOKEN_FILE = "worker.token"


class Principal(BaseModel):
    """Who is calling: the token's id, role and project."""

    token_id: str
    name: str
    role: Role
    project: str


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _info(row: models.ApiToken) -> TokenInfo:
    return TokenInfo.model_validate(row, from_attributes=True)


def create_token(session: Session, request: TokenCreate, *, token: str | None = None) -> NewToken:
    """A new token; pass `token` to register a given value (operator-provided secrets)."""
    if token is not None:
        match = TOKEN_PATTERN.match(token)
        if not match:
            raise InvalidRequest("a token must look like lp_tok_<26 chars>_<secret of 20+ chars>;"
                                 " make one with `loraplane tokens create`", code="invalid_token")
        token_id, secret = match.groups()
    else:
        token_id, secret = new_id("tok"), secrets.token_urlsafe(32)
    row = models.ApiToken(id=token_id, name=request.name or f"{request.role.value} token",
                          role=request.role.value, project=request.project,
                          secret_sha256=_digest(secret), created_at=utcnow())
    session.add(row)
    session.flush()
    return NewToken(**_info(row).model_dump(), token=f"lp_{token_id}_{secret}")


def new_token_value() -> str:
    """A fresh token string (for operators who provision secrets before the server runs)."""
    return f"lp_{new_id('tok')}_{secrets.token_urlsafe(32)}"


_TOKEN = models.ApiToken.__table__
# Built once: this runs on every request (a Core statement on the caller's connection, no
# ORM object; the statement cache finds it without building a new cache key each time).
_TOKEN_BY_ID = select(_TOKEN.c.id, _TOKEN.c.name, _TOKEN.c.role, _TOKEN.c.project,
                      _TOKEN.c.secret_sha256, _TOKEN.c.revoked_at
                      ).where(_TOKEN.c.id == bindparam("token_id"))


def authenticate(db: Session | Connection, token: str | None) -> Principal:
    """The principal a bearer token stands for; 401 for a missing, unknown or revoked token.
    One row read (columns, not an ORM object: this runs on every request)."""
    if not token:
        raise Unauthorized("missing bearer token: send `Authorization: Bearer <token>`")
    match = TOKEN_PATTERN.match(token)
    row = db.execute(_TOKEN_BY_ID, {"token_id": match.group(1)}).first() if match else None
    presented = _digest(match.group(2)) if match else _digest(token)
    stored = row.secret_sha256 if row is not None else _digest("")
    if row is None or not hmac.compare_digest(presented, stored) or row.revoked_at is not None:
        raise Unauthorized("invalid or revoked token")
    return Principal(token_id=row.id, name=row.name, role=Role(row.role), project=row.project)


def list_tokens(session: Session, *, limit: int, cursor: str | None) -> Page[TokenInfo]:
    rows, next_cursor = newest_first(session, select(models.ApiToken), models.ApiToken.id,
                                     limit=limit, cursor=cursor)
    return Page[TokenInfo](items=[_info(r) for r in rows], next_cursor=next_cursor)


def revoke_token(session: Session, token_id: str) -> TokenInfo:
    """Revoke a token; its next request is refused."""
    row = session.get(models.ApiToken, token_id)
    if row is None:
        raise NotFound(f"no token {token_id!r}")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    session.flush()
    return _info(row)


def ensure_token(session: Session, token: str, role: Role, name: str) -> None:
    """Register an operator-given token value if it is not known yet (idempotent)."""
    match = TOKEN_PATTERN.match(token)
    if match and session.get(models.ApiToken, match.group(1)) is not None:
        return
    create_token(session, TokenCreate(role=role, name=name), token=token)


def write_secret_file(path: Path, value: str) -> None:
    """Write a secret readable by its owner only (created 0600, never widened)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    os.chmod(path, 0o600)


def bootstrap_tokens(session: Session, data_dir: Path, *, admin_token: str | None,
                     worker_token: str | None) -> tuple[Path, str]:
    """First start: make an admin token (file `admin.token`, mode 0600) and a worker token for
    the embedded workers (`worker.token`). Operator-given values are registered instead.
    Returns the admin token file and the worker token."""
    admin_file, worker_file = data_dir / ADMIN_TOKEN_FILE, data_dir / WORKER_TOKEN_FILE
    if admin_token:
        ensure_token(session, admin_token, Role.admin, "admin (from LORAPLANE_ADMIN_TOKEN)")
    elif not admin_file.exists():
        write_secret_file(admin_file, create_token(
            session, TokenCreate(role=Role.admin, name="bootstrap admin")).token)
    if worker_token:
        ensure_token(session, worker_token, Role.worker, "worker (from LORAPLANE_WORKER_TOKEN)")
    else:
        worker_token = read_token_file(worker_file)
        if worker_token is None or not _known(session, worker_token):
            worker_token = create_token(
                session, TokenCreate(role=Role.worker, name="embedded workers")).token
            write_secret_file(worker_file, worker_token)
    return admin_file, worker_token


def _known(session: Session, token: str) -> bool:
    try:
        authenticate(session, token)
        return True
    except Unauthorized:
        return False


def read_token_file(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except OSError:
        return None

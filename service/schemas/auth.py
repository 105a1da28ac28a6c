"""API tokens as clients see them: roles, the token list, a new token shown once."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from service.names import PROJECT_PATTERN


class Role(StrEnum):
    admin = "admin"
    user = "user"
    worker = "worker"


class TokenInfo(BaseModel):
    id: str
    name: str
    role: Role
    project: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class NewToken(TokenInfo):
    token: str = Field(description="The bearer token. Shown once; only its hash is stored.")


class TokenCreate(BaseModel):
    role: Role
    project: str = Field("default", pattern=PROJECT_PATTERN)
    name: str = Field("", max_length=100)

"""Uploaded datasets as clients see them."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class Dataset(BaseModel):
    """An uploaded JSONL training file."""

    id: str
    name: str
    size: int = Field(description="Bytes.")
    rows: int = Field(description="JSON objects (blank lines are not rows).")
    sha256: str
    keys: list[str] = Field(description="Keys present in every row.")
    created_at: datetime

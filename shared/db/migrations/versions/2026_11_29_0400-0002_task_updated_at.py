"""task.updated_at, kept by a trigger and indexed, so that the api can find the tasks that changed
since its last look (the live feed behind ``GET /api/v1/events``).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 04:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# clock_timestamp(), not now(): now() is the start of the writing transaction, which can be well
# before its commit; the row's own write time keeps the gap between "stamped" and "visible" short.
# A write that changes nothing leaves the stamp alone.
TOUCH_FUNCTION = """
CREATE FUNCTION task_touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW IS NOT DISTINCT FROM OLD THEN
        RETURN NEW;
    END IF;
    NEW.updated_at := clock_timestamp();
    RETURN NEW;
END
$$;
CREATE TRIGGER task_touch_updated_at BEFORE INSERT OR UPDATE ON task
    FOR EACH ROW EXECUTE FUNCTION task_touch_updated_at();
"""


def upgrade() -> None:
    # now() is stable, so existing rows get it without a table rewrite.
    op.add_column(
        "task",
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_index("ix_task_updated_at", "task", ["updated_at"])
    op.execute(TOUCH_FUNCTION)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS task_touch_updated_at ON task")
    op.execute("DROP FUNCTION IF EXISTS task_touch_updated_at()")
    op.drop_index("ix_task_updated_at", table_name="task")
    op.drop_column("task", "updated_at")

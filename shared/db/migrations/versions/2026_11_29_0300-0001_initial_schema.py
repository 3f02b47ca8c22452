"""Initial schema: api keys, devices, accounts, tasks with their counts, logs and screenshots.

Revision ID: 0001
Revises:
Create Date: 2026-11-29 03:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, *, nullable: bool = True, now: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable, server_default=sa.func.now() if now else None)


# Statement-level triggers keep task_count exact within each transaction, at the cost of one small
# grouped upsert per statement (not per row). ORDER BY makes concurrent writers lock rows in the same
# order, so that they cannot deadlock on each other's shards.
COUNT_FUNCTIONS = """
CREATE FUNCTION task_count_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO task_count AS c (status, script_name, source, shard, n)
        SELECT status, script_name, source, pg_backend_pid() % 64, count(*)
        FROM new_rows GROUP BY status, script_name, source ORDER BY 1, 2, 3
        ON CONFLICT (status, script_name, source, shard) DO UPDATE SET n = c.n + excluded.n;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO task_count AS c (status, script_name, source, shard, n)
        SELECT status, script_name, source, pg_backend_pid() % 64, -count(*)
        FROM old_rows GROUP BY status, script_name, source ORDER BY 1, 2, 3
        ON CONFLICT (status, script_name, source, shard) DO UPDATE SET n = c.n + excluded.n;
    ELSE
        INSERT INTO task_count AS c (status, script_name, source, shard, n)
        SELECT status, script_name, source, pg_backend_pid() % 64, sum(delta)
        FROM (
            SELECT o.status, o.script_name, o.source, -1 AS delta
            FROM old_rows o JOIN new_rows n ON n.id = o.id
            WHERE n.status <> o.status
            UNION ALL
            SELECT n.status, n.script_name, n.source, 1 AS delta
            FROM old_rows o JOIN new_rows n ON n.id = o.id
            WHERE n.status <> o.status
        ) AS moved
        GROUP BY status, script_name, source
        HAVING sum(delta) <> 0
        ORDER BY 1, 2, 3
        ON CONFLICT (status, script_name, source, shard) DO UPDATE SET n = c.n + excluded.n;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER task_count_insert AFTER INSERT ON task
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION task_count_apply();
CREATE TRIGGER task_count_update AFTER UPDATE ON task
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION task_count_apply();
CREATE TRIGGER task_count_delete AFTER DELETE ON task
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION task_count_apply();
"""


def upgrade() -> None:
    op.create_table(
        "api_key",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("prefix", sa.Text(), nullable=False),
        sa.Column("key_hash", sa.Text(), nullable=False),
        sa.Column("plan", sa.Text(), nullable=False),
        _ts("created_at", nullable=False, now=True),
        _ts("revoked_at"),
        sa.CheckConstraint("plan IN ('starter','pro','team','business')", name=op.f("ck_api_key_plan")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_key")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_key_key_hash")),
    )
    op.create_table(
        "device",
        sa.Column("serial", sa.Text(), nullable=False),
        sa.Column("hub", sa.Text(), nullable=True),
        sa.Column("online", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("state", sa.Text(), server_default="unknown", nullable=False),
        sa.Column("model", sa.Text(), nullable=True),
        sa.Column(
            "properties",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        _ts("last_seen"),
        _ts("created_at", nullable=False, now=True),
        sa.Column("lease_task_id", sa.BigInteger(), nullable=True),
        sa.Column("lease_attempt", sa.Integer(), nullable=True),
        _ts("lease_since"),
        _ts("lease_heartbeat_at"),
        sa.PrimaryKeyConstraint("serial", name=op.f("pk_device")),
    )
    op.create_table(
        "account",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("username", sa.Text(), nullable=False),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("password", sa.Text(), nullable=True),
        sa.Column("platform", sa.Text(), nullable=False),
        sa.Column("packagename", sa.Text(), nullable=True),
        sa.Column("device", sa.Text(), nullable=True),
        sa.Column("logined", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("status", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("tags", postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'"), nullable=False),
        _ts("created_at", nullable=False, now=True),
        sa.CheckConstraint("logined IN (0,1)", name=op.f("ck_account_logined")),
        sa.CheckConstraint("platform IN ('tiktok','instagram')", name=op.f("ck_account_platform")),
        sa.CheckConstraint("status IN (0,1)", name=op.f("ck_account_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account")),
        sa.UniqueConstraint("platform", "username", name=op.f("uq_account_platform_username")),
    )
    op.create_index("ix_account_device", "account", ["device"])
    op.create_index("ix_account_tags", "account", ["tags"], postgresql_using="gin")
    op.create_table(
        "task",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("serial", sa.Text(), nullable=False),
        sa.Column("username", sa.Text(), nullable=True),
        sa.Column("account_id", sa.BigInteger(), nullable=True),
        sa.Column("platform", sa.Text(), nullable=False),
        sa.Column("packagename", sa.Text(), nullable=True),
        sa.Column("script_name", sa.Text(), nullable=False),
        sa.Column("script_config", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("status", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("source", sa.Text(), server_default="api", nullable=False),
        sa.Column("start_time", sa.Text(), nullable=True),
        _ts("scheduled_at"),
        _ts("due_at", nullable=False, now=True),
        _ts("created_at", nullable=False, now=True),
        _ts("dispatched_at"),
        _ts("started_at"),
        _ts("end_time"),
        _ts("stop_requested_at"),
        sa.Column("retry_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("attempt", sa.Integer(), server_default="0", nullable=False),
        sa.Column("remark", sa.Text(), server_default="", nullable=False),
        sa.Column("failure_kind", sa.Text(), nullable=True),
        sa.Column("hub", sa.Text(), nullable=True),
        sa.Column("api_key_id", sa.BigInteger(), nullable=True),
        sa.CheckConstraint("source IN ('api','ui')", name=op.f("ck_task_source")),
        sa.CheckConstraint("status BETWEEN 0 AND 3", name=op.f("ck_task_status")),
        sa.ForeignKeyConstraint(
            ["account_id"], ["account.id"], name=op.f("fk_task_account_id_account"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["api_key_id"], ["api_key.id"], name=op.f("fk_task_api_key_id_api_key"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task")),
    )
    op.create_index("ix_task_status_id", "task", ["status", sa.text("id DESC")])
    op.create_index("ix_task_serial_status_id", "task", ["serial", "status", sa.text("id DESC")])
    op.create_index("ix_task_script_name_id", "task", ["script_name", sa.text("id DESC")])
    op.create_index("ix_task_source_id", "task", ["source", sa.text("id DESC")])
    op.create_index(
        "ix_task_waiting",
        "task",
        ["serial", "id"],
        postgresql_include=["due_at"],
        postgresql_where=sa.text("status = 0 AND dispatched_at IS NULL"),
    )
    op.create_index(
        "ix_task_waiting_due",
        "task",
        ["due_at"],
        postgresql_where=sa.text("status = 0 AND dispatched_at IS NULL"),
    )
    op.create_index(
        "ix_task_active_key_serial",
        "task",
        ["api_key_id", "serial"],
        postgresql_where=sa.text("status IN (0,1)"),
    )
    op.create_table(
        "task_count",
        sa.Column("status", sa.SmallInteger(), nullable=False),
        sa.Column("script_name", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("shard", sa.SmallInteger(), nullable=False),
        sa.Column("n", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("status", "script_name", "source", "shard", name=op.f("pk_task_count")),
    )
    op.create_table(
        "task_log",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("task_id", sa.BigInteger(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        _ts("at", nullable=False, now=True),
        sa.Column("level", sa.Text(), server_default="info", nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column(
            "fields",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["task_id"], ["task.id"], name=op.f("fk_task_log_task_id_task"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_log")),
    )
    op.create_index("ix_task_log_task_id_id", "task_log", ["task_id", "id"])
    op.create_table(
        "task_screenshot",
        sa.Column("task_id", sa.BigInteger(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        _ts("taken_at", nullable=False, now=True),
        sa.Column("png", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["task_id"], ["task.id"], name=op.f("fk_task_screenshot_task_id_task"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("task_id", name=op.f("pk_task_screenshot")),
    )
    op.execute(COUNT_FUNCTIONS)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS task_count_delete ON task")
    op.execute("DROP TRIGGER IF EXISTS task_count_update ON task")
    op.execute("DROP TRIGGER IF EXISTS task_count_insert ON task")
    op.execute("DROP FUNCTION IF EXISTS task_count_apply()")
    for table in ("task_screenshot", "task_log", "task_count", "task", "account", "device", "api_key"):
        op.drop_table(table)

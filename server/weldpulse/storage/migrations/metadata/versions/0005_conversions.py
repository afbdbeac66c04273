"""Goals and saved funnels per site, and API keys limited to one site (NULL: every site)."""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "goals",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("site_id", sa.String(36), sa.ForeignKey("sites.id"), nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("event_name", sa.String(120), nullable=True),
        sa.Column("page_path", sa.String(2000), nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("site_id", "name", name="uq_goals_site_name"),
    )
    op.create_index("ix_goals_site_id", "goals", ["site_id"])
    op.create_table(
        "funnels",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("site_id", sa.String(36), sa.ForeignKey("sites.id"), nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("definition", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("site_id", "name", name="uq_funnels_site_name"),
    )
    op.create_index("ix_funnels_site_id", "funnels", ["site_id"])
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("site_id", sa.String(36), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("site_id")
    op.drop_index("ix_funnels_site_id", "funnels")
    op.drop_table("funnels")
    op.drop_index("ix_goals_site_id", "goals")
    op.drop_table("goals")

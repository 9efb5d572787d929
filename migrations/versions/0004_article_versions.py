"""Point-in-time law: every version of an article, and what each dated build saw.

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "article_versions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(300), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("doc_key", sa.String(200), nullable=False),
        sa.Column("law", sa.String(500), nullable=False),
        sa.Column("article", sa.String(50), nullable=False),
        sa.Column("article_label", sa.String(100), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("chapters", sa.JSON(), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("embed_hash", sa.String(64), nullable=True),
        sa.UniqueConstraint("key", "content_hash", name="uq_article_versions_key_content"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "observations",
        sa.Column("key", sa.String(300), primary_key=True),
        sa.Column("as_of", sa.Date(), primary_key=True),
        sa.Column(
            "version_id", sa.Integer(), sa.ForeignKey("article_versions.id", ondelete="CASCADE"), nullable=True
        ),
    )
    op.create_index("ix_observations_as_of", "observations", ["as_of"])


def downgrade() -> None:
    op.drop_index("ix_observations_as_of", "observations")
    op.drop_table("observations")
    op.drop_table("article_versions")

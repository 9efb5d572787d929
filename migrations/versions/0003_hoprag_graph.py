"""HopRAG graph: the LLM answer cache, pseudo-queries, edges; passages remember their questions' source.

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("passages") as batch:
        batch.add_column(sa.Column("questions_key", sa.String(64), nullable=True))
    op.create_table(
        "llm_results",
        sa.Column("cache_key", sa.String(64), primary_key=True),
        sa.Column("model", sa.String(300), nullable=False),
        sa.Column("prompt_version", sa.String(40), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("incoming", sa.JSON(), nullable=False),
        sa.Column("outgoing", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "pseudo_queries",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("passage_id", sa.Integer(), sa.ForeignKey("passages.id", ondelete="CASCADE"), nullable=False),
        sa.Column("direction", sa.String(3), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("embed_hash", sa.String(64), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_pseudo_queries_passage_id", "pseudo_queries", ["passage_id"])
    op.create_table(
        "edges",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("source_id", sa.Integer(), sa.ForeignKey("passages.id", ondelete="CASCADE"), nullable=False),
        sa.Column("target_id", sa.Integer(), sa.ForeignKey("passages.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("out_query_id", sa.Integer(), sa.ForeignKey("pseudo_queries.id", ondelete="CASCADE"), nullable=True),
        sa.Column("in_query_id", sa.Integer(), sa.ForeignKey("pseudo_queries.id", ondelete="CASCADE"), nullable=True),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("span", sa.Text(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
    )
    op.create_index("ix_edges_source_id", "edges", ["source_id"])
    op.create_index("ix_edges_target_id", "edges", ["target_id"])


def downgrade() -> None:
    op.drop_index("ix_edges_target_id", "edges")
    op.drop_index("ix_edges_source_id", "edges")
    op.drop_table("edges")
    op.drop_index("ix_pseudo_queries_passage_id", "pseudo_queries")
    op.drop_table("pseudo_queries")
    op.drop_table("llm_results")
    with op.batch_alter_table("passages") as batch:
        batch.drop_column("questions_key")

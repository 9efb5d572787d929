"""Alembic migrations: an index made by the first migration opens after the latest one; the models
match the migrated schema; a database from a newer hoprag is refused untouched."""

from __future__ import annotations

import json

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, text

from indexer.index import Index
from storage.db import Database, SchemaError, alembic_config, head_revision
from storage.models import Base


def _upgrade(url: str, revision: str) -> None:
    cfg = alembic_config()
    engine = create_engine(url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    engine.dispose()


@pytest.mark.sqlite_only  # the index is its home folder here: made at revision 0001 in its SQLite file
def test_first_migration_index_opens_at_head(tmp_path):
    home = tmp_path / "h"
    home.mkdir()
    url = f"sqlite:///{home / 'index.db'}"
    _upgrade(url, "0001")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO meta(key, value) VALUES ('generation', :v)"), {"v": json.dumps({"v": 1})})
        conn.execute(text("INSERT INTO documents(id, doc_key, name, format, source, content_hash, metadata, updated_at) "
                          "VALUES (1, 'T1', '舊法', 'moj-json', 'x.json', 'h', '{}', '2024-01-01')"))
        conn.execute(text("INSERT INTO passages(id, key, document_id, law, article, article_label, text, chapters, "
                          "paragraphs, ordinal, metadata, text_hash, embed_hash, updated_at) VALUES "
                          "(1, 'T1:1', 1, '舊法', '1', '第1條', '舊條文', '[]', '[\"舊條文\"]', 0, '{}', 'a', NULL, '2024-01-01')"))
        assert {r[0] for r in conn.execute(text("SELECT name FROM sqlite_master WHERE type='table'"))} >= {"passages"}
        assert "builds" not in {r[0] for r in conn.execute(text("SELECT name FROM sqlite_master WHERE type='table'"))}
    engine.dispose()

    with Index(home) as idx:
        assert idx.db.revision == head_revision() != "0001"
        assert idx.generation == 1
        assert idx.passage("T1:1")["text"] == "舊條文"
        with idx.db.engine.connect() as conn:
            assert MigrationContext.configure(conn).get_current_revision() == head_revision()
            assert conn.execute(text("SELECT count(*) FROM builds")).scalar() == 0


def test_models_match_migrations(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'index.db'}")
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    db.close()
    assert diff == []


def test_newer_database_is_refused_and_untouched(tmp_path):
    path = tmp_path / "index.db"
    db = Database(f"sqlite:///{path}")
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    db.close()
    before = path.read_bytes()
    with pytest.raises(SchemaError, match="newer version"):
        Database(f"sqlite:///{path}")
    assert path.read_bytes() == before


def test_sqlite_pragmas(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'index.db'}")
    with db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    db.close()

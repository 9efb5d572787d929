"""Alembic environment. Runs on the connection storage.db hands over (config.attributes), or on
the URL in the config when alembic is run by hand: `alembic -x url=sqlite:///.hoprag/index.db upgrade head`."""

from alembic import context
from sqlalchemy import create_engine

from storage.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection) -> None:
    # Batch mode: SQLite cannot ALTER most things in place; alembic copies the table instead.
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    with create_engine(url).connect() as conn:
        _run(conn)

"""Alembic environment: always online, on the connection till_db.migrate hands over."""

from alembic import context

from till_tools.store import content as _content  # noqa: F401  (registers the tables)
from till_tools.store.models import Base

VERSION_TABLE = "alembic_version_tools"

connection = context.config.attributes.get("connection")
if connection is None:
    raise SystemExit("run migrations through `till migrate` (till_db.migrate), not the alembic CLI")
context.configure(connection=connection, target_metadata=Base.metadata, version_table=VERSION_TABLE,
                  render_as_batch=True, compare_type=True)
with context.begin_transaction():
    context.run_migrations()

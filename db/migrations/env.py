"""Alembic environment: runs on the connection db.engine.migrate() hands over, or on the configured URL."""

from alembic import context
from sqlmodel import SQLModel

import db.models  # noqa: F401  (registers the tables on SQLModel.metadata)
import db.report_models  # noqa: F401  (and the patient-reported ones, issue #17)
from db.engine import make_engine

target_metadata = SQLModel.metadata


def run_on(connection) -> None:
    # render_as_batch lets ALTER-style migrations run on SQLite (docs/DESIGN.md section 7).
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    run_on(connection)
else:
    engine = make_engine(context.config.get_main_option("sqlalchemy.url"))
    with engine.begin() as connection:
        run_on(connection)
    engine.dispose()

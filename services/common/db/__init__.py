"""The database: one set of SQLAlchemy models for PostgreSQL and SQLite, migrated by Alembic."""

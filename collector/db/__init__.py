"""The collector's store: one code path for SQLite and PostgreSQL."""

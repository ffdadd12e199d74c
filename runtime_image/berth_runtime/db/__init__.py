"""Postgres access: the connection pool, schema migrations and named SQL."""

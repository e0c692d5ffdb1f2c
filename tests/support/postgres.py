"""The tests' throwaway PostgreSQL cluster: scripts/throwaway_postgres.py, shared with the benchmark (bench/)."""

from scripts.throwaway_postgres import PostgresServer, PostgresServerError, find_bindir, free_port  # noqa: F401

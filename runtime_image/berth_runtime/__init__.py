"""Berth's agent server: a LangGraph Agent Server compatible runtime on Postgres and Redis."""

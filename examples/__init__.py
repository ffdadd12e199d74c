"""Runnable examples: a real agent, the YAML to deploy it, and the `make demo` walk-through."""

"""Observability of runs: OpenTelemetry traces and structured (JSON) logs."""

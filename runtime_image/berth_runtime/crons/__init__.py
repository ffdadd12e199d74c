"""Scheduled runs: cron rows in Postgres, fired by a scheduler loop in worker processes."""

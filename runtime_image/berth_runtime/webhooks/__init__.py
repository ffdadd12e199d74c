"""Run-completion webhooks: a POST with the run and its outcome when a run ends."""

"""The durable queue: the run row is the queue entry; workers claim runs with a lease."""

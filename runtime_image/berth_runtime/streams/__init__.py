"""Run events: the Redis fan-out (wake-ups, cancellation, resumable streams) and SSE framing."""

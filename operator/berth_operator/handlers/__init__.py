"""kopf entry points: thin wiring of the render layer and the effect layer."""

"""The effect layer: the only place (with handlers/) that talks to the Kubernetes API."""

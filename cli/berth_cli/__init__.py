"""`berth`: from an agent folder to a running deployment (dev server, image, Kubernetes)."""

"""The chaos soak (`make soak`): see soak.py."""

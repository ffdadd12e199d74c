"""Running a graph for one run, and reading thread state out of the checkpointer."""

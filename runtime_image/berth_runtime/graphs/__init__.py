"""Loading the graphs that `langgraph.json` declares."""

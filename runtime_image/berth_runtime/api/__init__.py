"""HTTP routes, one module per resource, with the Agent Server's paths and semantics."""

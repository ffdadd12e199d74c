"""Custom authentication: the `@auth.authenticate` handler of a `langgraph_sdk.Auth` object."""

"""Agent Auth: graphs act for the user who runs them with OAuth tokens stored by the runtime.

`config` and `flow` are pure (parsing, PKCE, state binding, URLs, token responses); `crypto`
encrypts tokens at rest; `oauth` talks to providers; `service` is the effect layer over
Postgres; `helper` is what graphs call (`await authenticate(provider, scopes)`).
"""

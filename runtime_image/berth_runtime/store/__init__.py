"""Semantic store search: embeddings for `store.index` and the pgvector index behind it."""

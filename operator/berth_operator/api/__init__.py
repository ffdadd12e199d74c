"""The Berth API (group berth.dev, version v1alpha1): pydantic models, the source of the CRDs."""

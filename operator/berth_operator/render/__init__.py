"""Pure rendering: custom resource model + observed facts -> desired Kubernetes objects.

Nothing here performs I/O or imports kopf, the Kubernetes client, psycopg or
redis (an import-linter contract enforces it); every function is unit-tested.
"""

"""Berth's Kubernetes operator: custom resources reconciled into runtime objects."""

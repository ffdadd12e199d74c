"""The example agent: a support assistant whose refunds wait for a human's approval."""

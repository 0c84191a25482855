"""Meter data management: registry, idempotent ingest, gaps and re-collection, checks."""

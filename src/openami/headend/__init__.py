"""The utility's side of Route A: meter security, ingest of pushes, collection."""

"""Sans-IO protocol libraries: bytes and events in, bytes and events out."""

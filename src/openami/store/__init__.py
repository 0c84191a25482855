"""Storage backends: the interval data lake (Parquet + DuckDB) and operational SQL."""

"""Dataset folders: parquet shards, dataset card, manifest (and, later, publishing)."""

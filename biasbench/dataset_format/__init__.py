"""The local dataset format: a folder of parquet shards (PNG images), a dataset card and a checksum manifest,
read by `datasets.load_dataset` as it is. What talks to the Hugging Face Hub is in `biasbench.hub`."""

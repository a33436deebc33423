"""Readers for the official source releases, their checksums and downloads."""

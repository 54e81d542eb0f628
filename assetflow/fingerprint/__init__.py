"""Fingerprints: content hashes of code, of stored data and of source files."""

"""Encryption at rest: envelope encryption of every secret value under a master key."""

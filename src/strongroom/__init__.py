"""Strongroom: a self-hosted secrets manager that speaks the AWS Secrets Manager API."""

__version__ = "0.1.0"

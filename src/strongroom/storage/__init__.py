"""Durable state behind one interface (``base.Store``); SQLite by default, PostgreSQL next."""

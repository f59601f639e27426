"""Shared plumbing: settings, database, errors, auth, pagination, observability."""

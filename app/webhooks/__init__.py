"""Webhooks: units subscribe URLs to notifications, delivered signed, retried and logged."""

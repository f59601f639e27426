"""The arq worker: only wiring (settings, cron table, startup/shutdown); job bodies live in app/."""

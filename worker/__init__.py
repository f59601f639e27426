"""The worker process: arq wiring (functions, cron table, shared resources), the supervisor that
keeps it running through Redis outages, and its heartbeat. Job bodies live in app/."""

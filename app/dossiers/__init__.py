"""Dossier timelines: status events, derived state, deadlines, pauses and timeliness."""

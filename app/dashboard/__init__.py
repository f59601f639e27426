"""A small web dashboard served by the service itself: rankings, units, overdue dossiers."""

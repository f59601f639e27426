"""The composition root: what a domain gets from the domains above it, given once at start-up.

``app.main`` and ``worker.settings`` import this module; nothing below them does.
"""

from __future__ import annotations

from app.insights.repository import open_flag_counts
from app.scores import rankings

# Rankings show each unit's open data-integrity flags; insights keeps them, above scores.
rankings.count_flags_with(open_flag_counts)

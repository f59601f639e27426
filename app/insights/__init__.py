"""Insights the portal does not give: what-if planner, month-end projection, integrity flags."""

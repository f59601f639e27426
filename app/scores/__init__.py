"""Scores, grades and rankings on the service index, precomputed for polling."""

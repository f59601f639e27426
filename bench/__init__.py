"""chiso's benchmark harness: ``make bench`` (``python -m bench``).

Every figure is measured in the same run, interleaved with a bare baseline on the same
machine, so ratios stay meaningful on shared and noisy hosts. See docs/PERFORMANCE.md.
"""

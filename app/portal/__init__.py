"""The national portal's wire formats, its client and simulator."""

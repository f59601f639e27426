"""Vietnamese working-day calendar: office hours, public holidays, swaps and deadline rules."""

"""Plans: the ordered, immutable list of changes between desired and actual state."""

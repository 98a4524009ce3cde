"""audioclf: environmental sound classification."""

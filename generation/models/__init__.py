"""Generator networks, the character vocabulary and the one checkpoint loader (torch + stdlib only)."""

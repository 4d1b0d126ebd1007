"""A deterministic simulator of StayKey and its world (see docs/simulator.md)."""

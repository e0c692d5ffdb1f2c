"""Synthetic demo data (sessions.csv) and the seeded generator that writes it."""

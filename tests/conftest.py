"""Shared fixtures. Every test uses the real database and real services; see README "Tests"."""

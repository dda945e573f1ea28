"""Helpers shared by the test tiers: the proxy process fixture and small utilities."""

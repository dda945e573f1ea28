"""Reproducible benchmarks: hubproxy against its baselines, measured side by side in one run."""

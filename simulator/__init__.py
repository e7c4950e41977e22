"""Simulated Verifone Commanders for tests, benchmarks, demos and rehearsals."""

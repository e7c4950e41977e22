"""Code both the edge agent and the central aggregator import."""

__version__ = "0.1.0"

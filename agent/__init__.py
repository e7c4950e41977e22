"""The edge agent: polls Commanders and reports their status."""

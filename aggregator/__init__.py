"""The central aggregator: turns agent reports into one Prometheus endpoint."""

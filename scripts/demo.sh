#!/usr/bin/env bash
# Set up, then run the demo: a simulated fleet polled by the embedded
# agent+aggregator, /metrics on port 8000, a live view in this terminal.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/posproctor demo "$@"

#!/bin/sh
# Every benchmark, short by default (a few seconds each); figures go to bench/RESULTS.md.
# Longer runs: SECONDS_EACH=10 CONN_COUNTS=1000,5000,10000 bench/run_all.sh
set -e
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
S=${SECONDS_EACH:-3}
$PY -m bench.delivery --seconds "$S" --targets sqlite,pg,pg2 --rates 100,1000,5000
$PY -m bench.connections --counts "${CONN_COUNTS:-1000}"
$PY -m bench.synapse --seconds "$S" --rates 100
$PY -m bench.device_path --messages "${DEVICE_MESSAGES:-300}"
$PY -m bench.attachments --mib "${ATTACHMENT_MIB:-256}"

#!/bin/sh
# Every benchmark; figures (medians of several runs) go to bench/RESULTS.md. About 15 minutes.
# Shorter: SECONDS_EACH=2 RUNS=1 CONN_COUNTS=1000 bench/run_all.sh
set -e
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
S=${SECONDS_EACH:-4}
R=${RUNS:-3}
$PY -m bench.delivery --seconds "$S" --runs "$R" --targets sqlite,pg,pg2 --rates 100,1000,5000,10000
$PY -m bench.connections --counts "${CONN_COUNTS:-1000,5000,10000}"
$PY -m bench.synapse --seconds "$S" --rates 100
$PY -m bench.device_path --runs "$R"
$PY -m bench.attachments --mib "${ATTACHMENT_MIB:-256}"

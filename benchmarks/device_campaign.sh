#!/bin/bash
# Resumable device campaign, one device configuration per store and snapshot shard:
#   benchmarks/device_campaign.sh [ISA_CAP] [COUNT]
# ISA_CAP: avx2 | avx512_core (this host with oneDNN/ATen capped; only torch and OpenVINO
# are measured) or "none" (this host, every runtime). Each chunk holds the measurement
# mutex for at most ~0.08 h plus one 11-model batch; the shard is rewritten after each
# chunk (commit benchmarks/campaign_snapshot/devices-<id>.sqlite.gz to carry it over).
# A fresh checkout restores runs/devices/<id>.sqlite from the shard and skips stored rows.
# RUNTIMES="onnxruntime openvino ..." (environment) measures only those runtimes, e.g. a
# first pass without the torch-route converters (LiteRT, ExecuTorch: ~25 s of conversion
# per model) and a second pass with them.
set -u
cd "$(dirname "$0")/.."
CAP=${1:-avx2}
COUNT=${2:-300}
CAP_ARGS=()
RT_ARGS=()
[ -n "${RUNTIMES:-}" ] && read -r -a RT_ARGS <<< "--runtimes $RUNTIMES"
PY="import sys; from graphrec.device import DeviceProfile as D; d = D.detect(probe_gpus=False)"
if [ "$CAP" != "none" ]; then
  CAP_ARGS=(--isa-cap "$CAP")
  PY="$PY; from graphrec.device.isa_cap import capped_profile; d = capped_profile(d, '$CAP')"
fi
DEV=$(.venv/bin/python -c "$PY; print(d.device_id)") || exit 1
STORE=runs/devices/$DEV.sqlite
SNAP=benchmarks/campaign_snapshot/devices-$DEV.sqlite.gz
mkdir -p runs/devices
echo "device $DEV: store $STORE, shard $SNAP"
for _ in $(seq 1 500); do
  out=$(flock /tmp/graphrec-measure.lock .venv/bin/graphrec campaign run "${CAP_ARGS[@]}" "${RT_ARGS[@]}" \
      --zoo runs/zoo --count "$COUNT" --chunk 11 --batch 11 --store "$STORE" --snapshot "$SNAP" \
      --max-hours 0.08 2>&1)
  echo "$out" | grep -E "measured|session done|reached" | tail -3
  nice -n 19 .venv/bin/graphrec campaign snapshot --store "$STORE" --snapshot "$SNAP" | tail -1
  # done when a chunk adds nothing without running out of time (a chunk can spend its
  # time generating models and add no row)
  if echo "$out" | grep -q "session done: 0 rows added" && ! echo "$out" | grep -q "reached"; then
    echo "done $(date -u)"; break
  fi
  sleep 30  # let other measurement jobs take the mutex
done

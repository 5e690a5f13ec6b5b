#!/bin/bash
# A CPU profile of the bench's kube-apiserver during a teardown, for `go tool pprof`.
#
#   bash bench/apiserver_profile.sh OUT [DELAY] [SECONDS] &
#   .venv/bin/python bench/run.py --n 1000 --baseline-max-n 999 --sweep 0 --topics 0 --steady-intervals 0 --out /tmp/b
#   go tool pprof -top -cum -nodecount=45 "$(cat OUT.info | sed -n 's/.*api=//p')" OUT.pprof
#
# Waits for the bench's `kubectl delete`, then DELAY seconds (default 11: a 1,000-CR teardown's
# releases start about 11 s after it), then asks the API server for SECONDS (default 12) of CPU
# profile over the kubeconfig of the control plane's controller manager (its admin credentials).
set -euo pipefail
out=$1; delay=${2:-11}; secs=${3:-12}
while ! pgrep -f "kubectl.*delete" >/dev/null; do sleep 0.2; done
kubeconfig=$(pgrep -a kube-controller | head -1 | grep -o -- '--kubeconfig=[^ ]*' | cut -d= -f2)
kubectl=$(pgrep -af "kubectl.*delete" | head -1 | awk '{print $2}')
api=$(pgrep -a kube-apiserver | head -1 | awk '{print $2}')
echo "kubeconfig=$kubeconfig kubectl=$kubectl api=$api" > "$out.info"
sleep "$delay"
"$kubectl" --kubeconfig "$kubeconfig" get --raw "/debug/pprof/profile?seconds=$secs" > "$out.pprof"

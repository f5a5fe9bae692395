#!/usr/bin/env bash
# Serve the PaSa checkpoints with vLLM's OpenAI-compatible server (see models/README.md).
#
#   models/serve.sh crawler|selector|both [-- extra vllm serve arguments]
#
# Weights are downloaded once into models/weights/<name> (ignored by git). Environment:
#   PASA_WEIGHTS_DIR   where weights live             (default: models/weights)
#   PASA_HOST          address to listen on           (default: 127.0.0.1)
#   CRAWLER_PORT       crawler port                   (default: 8001)
#   SELECTOR_PORT      selector port                  (default: 8002)
#   PASA_GPU_UTIL      --gpu-memory-utilization       (default: 0.90 for one model, 0.45 each for both)
#   PASA_MAX_LEN       --max-model-len                (default: 8192; PaSa prompts are short)
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
WEIGHTS="${PASA_WEIGHTS_DIR:-$HERE/weights}"
HOST="${PASA_HOST:-127.0.0.1}"
CRAWLER_PORT="${CRAWLER_PORT:-8001}"
SELECTOR_PORT="${SELECTOR_PORT:-8002}"
MAX_LEN="${PASA_MAX_LEN:-8192}"

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

role="${1:-}"
shift || true
[[ "${1:-}" == "--" ]] && shift
EXTRA=("$@")
case "$role" in
  crawler|selector) UTIL="${PASA_GPU_UTIL:-0.90}" ;;
  both) UTIL="${PASA_GPU_UTIL:-0.45}" ;;
  *) usage ;;
esac

command -v vllm >/dev/null || { echo "vllm is not installed: pip install 'pasa-mcp[vllm]' (needs a CUDA GPU)" >&2; exit 1; }

download() {  # $1 = checkpoint name under bytedance-research/
  local dir="$WEIGHTS/$1"
  [[ -f "$dir/config.json" ]] && return
  echo "downloading bytedance-research/$1 into $dir (about 15 GB)" >&2
  if command -v hf >/dev/null; then
    hf download "bytedance-research/$1" --local-dir "$dir"
  elif command -v huggingface-cli >/dev/null; then
    huggingface-cli download "bytedance-research/$1" --local-dir "$dir"
  else
    echo "neither hf nor huggingface-cli found: pip install huggingface_hub" >&2; exit 1
  fi
}

command_for() {  # $1 = crawler|selector; prints the vllm serve command, one argument per line
  local name="pasa-7b-$1" port
  port=$([[ "$1" == crawler ]] && echo "$CRAWLER_PORT" || echo "$SELECTOR_PORT")
  printf '%s\n' vllm serve "$WEIGHTS/$name" --served-model-name "$name" --host "$HOST" --port "$port" \
    --gpu-memory-utilization "$UTIL" --max-model-len "$MAX_LEN"
  # The selector's P(True) reads the top-N logprobs on servers without logprob_token_ids; N <= this.
  [[ "$1" == selector ]] && printf '%s\n' --max-logprobs 20
  [[ ${#EXTRA[@]} -gt 0 ]] && printf '%s\n' "${EXTRA[@]}"
  return 0
}

wait_ready() {  # $1 = port, $2 = pid
  echo "waiting for vLLM on port $1 ..." >&2
  until curl -sf "http://$HOST:$1/health" >/dev/null; do
    kill -0 "$2" 2>/dev/null || { echo "vLLM on port $1 exited" >&2; exit 1; }
    sleep 5
  done
  echo "ready: http://$HOST:$1/v1" >&2
}

if [[ "$role" != both ]]; then
  download "pasa-7b-$role"
  mapfile -t cmd < <(command_for "$role")
  exec "${cmd[@]}"
fi

# Both on one GPU: start them one after the other, since vLLM sizes its cache from the memory free at start.
download pasa-7b-crawler
download pasa-7b-selector
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT INT TERM
mapfile -t cmd < <(command_for crawler)
"${cmd[@]}" & pids+=($!)
wait_ready "$CRAWLER_PORT" "${pids[0]}"
mapfile -t cmd < <(command_for selector)
"${cmd[@]}" & pids+=($!)
wait_ready "$SELECTOR_PORT" "${pids[1]}"
wait -n "${pids[@]}"

#!/usr/bin/env bash
# Kept for checkouts: the logic lives in the package (pasa_mcp/serving.py). See the README.
#   models/serve.sh crawler|selector|both [--engine vllm|llama.cpp] [-- extra server arguments]
exec pasa-mcp models serve "$@"

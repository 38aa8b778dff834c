#!/usr/bin/env bash
# `docker compose` (the v2 CLI plugin) so compose.yaml is validated by the real tool: the
# machine has the docker CLI but no compose plugin and no engine. Built from the Go module
# proxy (the only registry that ships it), pinned, into .tools/ and linked as a CLI plugin.
# Idempotent: skips when the pinned build is there.
set -euo pipefail
cd "$(dirname "$0")/../.."
VERSION=v2.40.3
BIN=.tools/docker-compose-$VERSION
PLUGIN_DIR=${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins
if [ ! -x "$BIN" ]; then
  command -v go >/dev/null || { echo "[setup] go is missing: cannot build docker compose $VERSION" >&2; exit 1; }
  echo "[setup] building docker compose $VERSION from the Go module proxy (a few minutes, once)"
  src=$(go mod download -json "github.com/docker/compose/v2@$VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  work=$(mktemp -d /tmp/l7m-compose-build-XXXXXX)
  trap 'rm -rf "$work"' EXIT
  # Its go.mod has replace/exclude directives, which apply only when it is the main module.
  cp -r "$src/." "$work/"
  chmod -R u+w "$work"
  (cd "$work" && GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w -X github.com/docker/compose/v2/internal.Version=$VERSION" -o "$work/docker-compose" ./cmd)
  mv "$work/docker-compose" "$BIN"
fi
mkdir -p "$PLUGIN_DIR"
ln -sfn "$(pwd)/$BIN" "$PLUGIN_DIR/docker-compose"

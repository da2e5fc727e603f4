#!/bin/sh
# Builds the default init (initlib/cmd/krun-init) into OUT (default: the
# committed krun-init next to this script), the one way it is built: static,
# for linux/amd64 v1, with no paths, no VCS stamp and no symbols, so that
# the same source and Go toolchain give the same bytes on any machine.
# `make init` runs it; TestImageIsBuiltFromTheTree checks the committed
# image against a fresh build.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/krun-init}
cd "$here/../.."
CGO_ENABLED=0 GOOS=linux GOARCH=amd64 GOAMD64=v1 GOFLAGS= \
	"${GO:-go}" build -trimpath -buildvcs=false -ldflags='-s -w' -o "$out" ./initlib/cmd/krun-init

#!/usr/bin/env bash
# The embedding story, checked from outside the module tree (make
# embed-check, part of make test):
#  1. a Go program in a temporary module, whose go.mod replaces krunbench
#     with this checkout, imports initlib/defaultinit and vmm/builder,
#     builds and runs;
#  2. `go install github.com/krunbench/krunbench/cmd/krunbench@latest`
#     with a clean GOPATH and module cache, from a module proxy holding
#     this checkout as its latest version (a file:// proxy; the
#     dependencies come from this machine's module cache, so no network is
#     needed): the CLI lists the default init as available and resolves
#     --init default, with no make, no tags, no build step.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
GO=${GO:-go}
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
modcache=$("$GO" env GOMODCACHE)
goversion=$(sed -n 's/^go //p' "$repo/go.mod")
unset GOFLAGS
export CGO_ENABLED=0

echo "embed-check: a program outside the module imports initlib/defaultinit and vmm/builder"
mkdir "$work/embedder"
cp "$repo/.ci/embedder/main.go.txt" "$work/embedder/main.go"
cp "$repo/go.sum" "$work/embedder/go.sum"
cat >"$work/embedder/go.mod" <<MOD
module example.com/embedder

go $goversion

require github.com/krunbench/krunbench v0.0.0

replace github.com/krunbench/krunbench => $repo
MOD
(cd "$work/embedder" && "$GO" mod tidy && "$GO" build -o embedder . && ./embedder) | tee "$work/embedder.out"
grep -q "accepted by Builder.SetPayload" "$work/embedder.out"

echo "embed-check: go install .../cmd/krunbench@latest into a clean GOPATH"
version=v0.0.0-ci
proxy=$work/proxy/github.com/krunbench/krunbench/@v
mkdir -p "$proxy"
mkdir "$work/modzip"
cp "$repo/.ci/embedder/modzip.go.txt" "$work/modzip/modzip.go"
(cd "$work/modzip" && "$GO" run modzip.go "$repo" "$proxy/$version.zip" "github.com/krunbench/krunbench@$version")
cp "$repo/go.mod" "$proxy/$version.mod"
echo "{\"Version\":\"$version\",\"Time\":\"2026-01-01T00:00:00Z\"}" >"$proxy/$version.info"
echo "$version" >"$proxy/list"
GOPATH=$work/gopath GOMODCACHE=$work/gopath/pkg/mod GOSUMDB=off GOTOOLCHAIN=local \
	GOPROXY="file://$work/proxy,file://$modcache/cache/download" \
	"$GO" install github.com/krunbench/krunbench/cmd/krunbench@latest
bin=$work/gopath/bin/krunbench
"$bin" library list --dir "$work/empty-library" | tee "$work/list.out"
grep -Eq '^init +krun-init \(default\) +ok +static x86-64 ELF' "$work/list.out"
# --init default resolves and passes its checks: the run stops at the kernel.
mkdir -p "$work/root/dev" "$work/root/bin"
out=$("$bin" run --init default --rootfs "$work/root" --kernel /nonexistent -- /bin/true 2>&1 || true)
echo "$out"
case $out in
"krunbench: kernel: "*) ;;
*) echo "embed-check: --init default did not get past the payload: $out" >&2; exit 1 ;;
esac
echo "embed-check: ok"

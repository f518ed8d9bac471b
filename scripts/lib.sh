# Sourced by the scripts: finds a Go that can build criu-forge (1.21 or
# newer fetches the toolchain go.mod names through the module proxy) and
# puts it first on PATH. Returns 1 when there is none.
use_go() {
  local dir
  for dir in "" /usr/local/go/bin $(ls -d /usr/lib/go-1.*/bin 2>/dev/null | sort -rV); do
    if [ -n "$dir" ]; then PATH=$dir:$PATH; fi
    if command -v go >/dev/null && [ "$(go env GOVERSION 2>/dev/null | sed -E 's/^go1\.([0-9]+).*/\1/')" -ge 21 ] 2>/dev/null; then
      export PATH
      return 0
    fi
  done
  return 1
}

#!/usr/bin/env bash
# Builds the .deb and the .rpm of slurm-usage from one release build.
#
#   packaging/build.sh            both packages
#   packaging/build.sh --deb      only the .deb (what packaging/ci.sh installs)
#
#   1. cargo build --release (once)
#   2. stages in target/packaging/: a stripped copy of target/release/slurm-usage and the
#      --help output of every command (doc/slurm-usage-help.txt); never committed
#   3. cargo deb --no-build  and  cargo generate-rpm, both packing the staged files
#      (metadata: [package.metadata.deb] and [package.metadata.generate-rpm] in Cargo.toml)
#
# Installs cargo-deb and cargo-generate-rpm with `cargo install --locked` when missing (1.4 and
# 4.5 CPU-minutes; 1.5 and 6.3 minutes on a busy 2-core machine). Needs strip (binutils), and
# dpkg-shlibdeps (dpkg-dev) for the .deb's automatic Depends. Prints the package paths at the
# end; exits non-zero on any failure.
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
cd "$ROOT"
CARGO=${CARGO:-cargo}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
STAGE=$ROOT/target/packaging   # the asset paths in Cargo.toml name it
OUT=$STAGE/out

want_rpm=1
case "${1:-}" in
  --deb) want_rpm=0 ;;
  "") ;;
  *) echo "usage: $0 [--deb]" >&2; exit 2 ;;
esac

log() { printf '[packaging/build %s] %s\n' "$(date +%T)" "$*" >&2; }

# cargo_tool SUBCOMMAND CRATE: install the cargo plugin when `cargo SUBCOMMAND` is missing.
cargo_tool() {
  local sub=$1 crate=$2 t
  if "$CARGO" "$sub" --version >/dev/null 2>&1; then
    return 0
  fi
  log "installing $crate (cargo install --locked $crate)"
  t=$(date +%s)
  "$CARGO" install --locked --quiet "$crate"
  log "installed $crate in $(( $(date +%s) - t )) s"
}

command -v strip >/dev/null || { log "strip not found (apt-get install binutils)"; exit 1; }
cargo_tool deb cargo-deb
((want_rpm)) && cargo_tool generate-rpm cargo-generate-rpm

log "cargo build --release"
t=$(date +%s)
"$CARGO" build --release --bin slurm-usage
log "release build: $(( $(date +%s) - t )) s"
bin=$TARGET_DIR/release/slurm-usage

log "staging in $STAGE"
rm -rf "$STAGE"
mkdir -p "$STAGE/doc" "$OUT"
strip --strip-all -o "$STAGE/slurm-usage" "$bin"
staged=$STAGE/slurm-usage

# The --help of the binary and of every (sub)command, as shipped docs; the same text whatever
# the environment of the build (clap shows env values and wraps to the terminal).
helpenv() { env -u SLURM_USAGE_CONFIG -u XDG_CONFIG_HOME NO_COLOR=1 COLUMNS=100 "$staged" "$@"; }
help_doc() { # help_doc CMD... : append `slurm-usage CMD... --help`, then recurse into its commands
  local sub
  printf '\n================================================================\n'
  printf '$ slurm-usage %s--help\n\n' "${*:+$* }"
  helpenv "$@" --help
  # The "Commands:" block lists "  name  description"; skip `help`.
  for sub in $(helpenv "$@" --help | awk '/^Commands:/{c=1; next} c && /^[^ ]/{c=0} c && /^  [a-z]/{print $1}'); do
    [[ $sub == help ]] && continue
    help_doc "$@" "$sub"
  done
}
{
  echo "slurm-usage $("$staged" --version | awk '{print $2}'): the --help of every command,"
  echo "generated from the packaged binary when the package was built."
  help_doc
} >"$STAGE/doc/slurm-usage-help.txt"

log "cargo deb --no-build"
t=$(date +%s)
deb=$("$CARGO" deb --no-build --no-strip --output "$OUT" | tail -n 1)
log ".deb: $(( $(date +%s) - t )) s"
[[ -f $deb ]] || { log "cargo deb did not report a .deb (got: $deb)"; exit 1; }

rpm=""
if ((want_rpm)); then
  log "cargo generate-rpm"
  t=$(date +%s)
  rm -f "$OUT"/*.rpm
  "$CARGO" generate-rpm --output "$OUT/"
  rpms=("$OUT"/*.rpm)
  rpm=${rpms[0]}
  log ".rpm: $(( $(date +%s) - t )) s"
fi

echo "binary:  $bin ($(stat -c %s "$bin") bytes; stripped $(stat -c %s "$staged") bytes)"
echo "deb:     $deb ($(stat -c %s "$deb") bytes)"
if [[ -n $rpm ]]; then
  echo "rpm:     $rpm ($(stat -c %s "$rpm") bytes)"
fi

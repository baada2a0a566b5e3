#!/usr/bin/env bash
# CI for the packages (issue 6). Run as root on Debian/Ubuntu; .ci/run calls it after the
# real-SLURM tests. It installs the .deb on THIS machine, checks it, removes and purges it.
#
#   1. apt: rpm (rpm -qlp on Debian), systemd (systemd-analyze), dpkg-dev (dpkg-shlibdeps)
#   2. packaging/build.sh: the release binary, the .deb and the .rpm
#   3. the release binary: ldd shows only glibc libraries (libc, libm, libgcc_s, ld-linux)
#   4. dpkg -i (after removing a previously installed slurm-usage), then:
#        slurm-usage --version; config check of /etc/slurm-usage/config.toml; the conffile;
#        user and group slurm-usage; /var/lib/slurm-usage 0750 slurm-usage:slurm-usage;
#        systemd-analyze verify of the installed unit;
#        slurm-usage test as the slurm-usage user, when SLURM_CONF is set and sacct answers
#        (else "skipped: no cluster")
#   5. dpkg -r: binary gone, data dir kept;  dpkg -P: data dir kept and the purge says so
#   6. the .rpm: rpm -qlp lists binary, unit, config; rpm -qcp lists the config
#
# Exits non-zero if any check failed, after printing each failure. Idempotent.
# Environment: SLURM_CONF (the cluster for `slurm-usage test`), CARGO.
set -Euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
cd "$ROOT" || exit 1
export DEBIAN_FRONTEND=noninteractive
PKG=slurm-usage
DATA=/var/lib/slurm-usage
CONF=/etc/slurm-usage/config.toml
UNIT=/usr/lib/systemd/system/slurm-usage.service
T0=$(date +%s)
FAILED=()
PASSED=0

indent() { sed "s/^/        ${1:-}/"; }
log() { printf '[packaging/ci %s +%ss] %s\n' "$(date +%T)" "$(($(date +%s) - T0))" "$*" >&2; }
ok() { PASSED=$((PASSED + 1)); printf '  ok    %s\n' "$1"; }
bad() { FAILED+=("$1"); printf '  FAIL  %s\n' "$1"; [[ -z ${2:-} ]] || indent <<<"$2"; }
# check NAME CMD...: run CMD; ok if it exits 0, else FAIL with its output
check() {
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then ok "$name"; else bad "$name" "$out"; fi
}
finish() {
  local n=${#FAILED[@]}
  log "done in $(($(date +%s) - T0)) s"
  if ((n)); then
    printf 'packaging/ci FAILED (%d):\n' "$n"
    printf '  - %s\n' "${FAILED[@]}"
    echo "$PASSED passed, $n failed"
    exit 1
  fi
  echo "$PASSED passed, 0 failed"
}

[[ $(id -u) -eq 0 ]] || { log "must run as root (it installs the package)"; exit 1; }
command -v dpkg >/dev/null || { log "needs dpkg (Debian/Ubuntu)"; exit 1; }

missing=()
for p in rpm systemd dpkg-dev binutils; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  log "apt-get install ${missing[*]}"
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
    >/tmp/packaging-ci-apt.log 2>&1 || { cat /tmp/packaging-ci-apt.log; exit 1; }
fi

log "packaging/build.sh"
tb=$(date +%s)
if ! build_out=$(bash "$HERE/build.sh"); then
  bad "packaging/build.sh"
  finish
fi
echo "$build_out"
log "packages built in $(($(date +%s) - tb)) s"
deb=$(awk '/^deb:/{print $2}' <<<"$build_out")
rpmf=$(awk '/^rpm:/{print $2}' <<<"$build_out")
bin=$(awk '/^binary:/{print $2}' <<<"$build_out")

echo "== the release binary"
libs=$(ldd "$bin" | awk '{print $1}' | sed 's#.*/##')
indent <<<"$libs"
extra=$(grep -Ev '^(linux-vdso\.so|libc\.so|libm\.so|libgcc_s\.so|ld-linux-x86-64\.so|ld-linux-aarch64\.so|libpthread\.so|libdl\.so|librt\.so)' <<<"$libs" || true)
if [[ -z $extra ]]; then ok "ldd: only glibc and libgcc_s"; else bad "ldd: unexpected libraries" "$extra"; fi
glibc=$(objdump -T "$bin" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -n 1)
echo "        needs $glibc at most; stripped size $(stat -c %s "$ROOT/target/packaging/slurm-usage") bytes"

echo "== the packaged default config"
# packaging/config.toml is config/config.example.toml with data_dir for the package: the same
# active settings otherwise (a key added to the example belongs in both).
active() { grep -Ev '^[[:space:]]*(#|$)' "$1" | grep -v '^data_dir'; }
if d=$(diff <(active config/config.example.toml) <(active packaging/config.toml)); then
  ok "packaging/config.toml has the example's settings"
else
  bad "packaging/config.toml differs from config/config.example.toml (besides data_dir)" "$d"
fi

echo "== dpkg -i $deb"
if dpkg -s "$PKG" >/dev/null 2>&1; then
  log "removing the installed $PKG first (purge; the data dir stays)"
  dpkg -P "$PKG" >/dev/null
fi
if out=$(dpkg -i "$deb" 2>&1); then ok "dpkg -i"; else bad "dpkg -i" "$out"; finish; fi
indent <<<"$out"

check "slurm-usage --version" /usr/bin/slurm-usage --version
check "config check $CONF" slurm-usage config check "$CONF"
if grep -qx "$CONF" /var/lib/dpkg/info/$PKG.conffiles 2>/dev/null; then ok "$CONF is a conffile"; else bad "$CONF is not a conffile"; fi
for f in /usr/bin/slurm-usage "$UNIT" /usr/share/doc/$PKG/README.md /usr/share/doc/$PKG/LICENSE /usr/share/doc/$PKG/slurm-usage-help.txt; do
  if [[ -s $f ]]; then ok "installed $f"; else bad "missing $f"; fi
done
if getent group $PKG >/dev/null; then ok "group $PKG"; else bad "group $PKG missing"; fi
if u=$(getent passwd $PKG); then
  IFS=: read -r _ _ uid _ _ home shell <<<"$u"
  if [[ $home == "$DATA" && $shell == */nologin && $uid -lt 1000 ]]; then
    ok "user $PKG (system uid $uid, home $home, shell $shell)"
  else
    bad "user $PKG: uid $uid, home $home, shell $shell (want a system uid, $DATA, nologin)"
  fi
else
  bad "user $PKG missing"
fi
if [[ -d $DATA ]] && [[ $(stat -c '%a %U %G' "$DATA") == "750 $PKG $PKG" ]]; then
  ok "$DATA 0750 $PKG:$PKG"
else
  bad "$DATA: $(stat -c '%a %U %G' "$DATA" 2>&1) (want 750 $PKG $PKG)"
fi

# verify exits 0 for unknown keys and bad values, so a message about our unit fails too;
# messages about other units (munge.service, slurmdbd.service absent here) are not ours.
if v=$(systemd-analyze verify "$UNIT" 2>&1) && ! grep -q 'slurm-usage.service' <<<"$v"; then
  ok "systemd-analyze verify $UNIT"
  [[ -z $v ]] || indent "note: " <<<"$v"
else
  bad "systemd-analyze verify $UNIT" "$v"
fi

# slurm-usage test against the real cluster, as the service user (as the daemon runs).
if [[ -n ${SLURM_CONF:-} ]] && timeout 30 sacct -n -X -S now-1hours >/dev/null 2>&1; then
  if out=$(timeout 300 runuser -u $PKG -- env SLURM_CONF="$SLURM_CONF" PATH="$PATH" \
    slurm-usage test --no-color --config "$CONF" 2>&1); then
    ok "slurm-usage test (as $PKG, SLURM_CONF=$SLURM_CONF)"
    indent <<<"$out"
  else
    bad "slurm-usage test (as $PKG, SLURM_CONF=$SLURM_CONF)" "$out"
  fi
else
  echo "  skip  slurm-usage test: skipped: no cluster (SLURM_CONF unset or sacct does not answer)"
fi

echo "== upgrade over an admin's edit"
# A newer package (version +ci1) whose default config changed, over a config the admin edited:
# the edit stays, the new default lands beside it as .dpkg-dist (dpkg's answer "keep yours").
up=$(mktemp -d)
dpkg-deb -R "$deb" "$up/pkg"
sed -i 's/^Version: .*/&+ci1/' "$up/pkg/DEBIAN/control"
echo '# a newer default (packaging/ci.sh)' >>"$up/pkg$CONF"
dpkg-deb -b --root-owner-group "$up/pkg" "$up/upgrade.deb" >/dev/null
sed -i 's/^lookback_days = .*/lookback_days = 5   # edited by the admin (packaging\/ci.sh)/' "$CONF"
chmod 0700 "$DATA"
if out=$(dpkg -i --force-confold "$up/upgrade.deb" 2>&1); then ok "dpkg -i of the upgrade"; else bad "dpkg -i of the upgrade" "$out"; fi
if grep -q '^lookback_days = 5 ' "$CONF"; then ok "the admin's edit survived the upgrade"; else bad "the upgrade overwrote $CONF" "$(grep -n lookback_days "$CONF")"; fi
if grep -q 'a newer default' "$CONF.dpkg-dist" 2>/dev/null; then ok "the new default is in $CONF.dpkg-dist"; else bad "no $CONF.dpkg-dist after the upgrade"; fi
check "config check of the edited $CONF" slurm-usage config check "$CONF"
if [[ $(stat -c '%a %U %G' "$DATA") == "750 $PKG $PKG" ]]; then ok "$DATA back to 0750 $PKG:$PKG"; else bad "$DATA after upgrade: $(stat -c '%a %U %G' "$DATA")"; fi
if grep -q 'installed. Edit' <<<"$out"; then bad "the upgrade printed the first-install message"; else ok "the upgrade is quiet"; fi
rm -rf "$up"

echo "== dpkg -r $PKG"
touch "$DATA/.packaging-ci-keep"   # a stand-in for collected data
if out=$(dpkg -r $PKG 2>&1); then ok "dpkg -r"; else bad "dpkg -r" "$out"; fi
if [[ ! -e /usr/bin/slurm-usage && ! -e $UNIT ]]; then ok "binary and unit removed"; else bad "binary or unit left after dpkg -r"; fi
if [[ -e $DATA/.packaging-ci-keep ]]; then ok "$DATA kept after dpkg -r"; else bad "$DATA gone after dpkg -r"; fi
if [[ -f $CONF ]]; then ok "$CONF kept after dpkg -r (a conffile until purge)"; else bad "$CONF gone after dpkg -r"; fi

echo "== dpkg -P $PKG"
if out=$(dpkg -P $PKG 2>&1); then ok "dpkg -P"; else bad "dpkg -P" "$out"; fi
indent <<<"$out"
if [[ -e $DATA/.packaging-ci-keep ]]; then ok "$DATA kept after purge"; else bad "$DATA gone after purge"; fi
if grep -q "keeps the collected data in $DATA" <<<"$out"; then ok "purge says it kept $DATA"; else bad "purge did not say it kept $DATA"; fi
if [[ ! -e $CONF ]]; then ok "$CONF removed by purge"; else bad "$CONF left after purge"; fi
rm -f "$DATA/.packaging-ci-keep"

echo "== the .rpm"
if [[ -f $rpmf ]]; then
  ok "built $rpmf"
  files=$(rpm -qlp "$rpmf" 2>/dev/null)
  for f in /usr/bin/slurm-usage "$UNIT" "$CONF" /usr/share/doc/$PKG/README.md /usr/share/doc/$PKG/LICENSE; do
    if grep -qx "$f" <<<"$files"; then ok "rpm -qlp lists $f"; else bad "rpm -qlp lacks $f" "$files"; fi
  done
  if [[ $(rpm -qcp "$rpmf" 2>/dev/null) == "$CONF" ]]; then ok "rpm -qcp: $CONF is the only %config"; else bad "rpm -qcp: $(rpm -qcp "$rpmf" 2>&1)"; fi
  if rpm -qp --qf '[%{FILEFLAGS:fflags} %{FILENAMES}\n]' "$rpmf" 2>/dev/null | grep -Eq "^cn $CONF\$"; then
    ok "$CONF is %config(noreplace)"
  else
    bad "$CONF is not %config(noreplace)" "$(rpm -qp --qf '[%{FILEFLAGS:fflags} %{FILENAMES}\n]' "$rpmf" 2>&1)"
  fi
  # rpm itself, into a scratch root (no scriptlets, no deps: this is not an RPM system): install,
  # edit the config, upgrade to release 2: the edit stays; erase: it is saved as .rpmsave.
  rr=$(mktemp -d)
  if "${CARGO:-cargo}" generate-rpm --set-metadata 'release = "2"' -o "$rr/r2.rpm" >/dev/null 2>&1 &&
    rpm --root "$rr/root" -i --nodeps --noscripts "$rpmf" >/dev/null 2>&1 &&
    echo '# edited by the admin (packaging/ci.sh)' >>"$rr/root$CONF" &&
    rpm --root "$rr/root" -U --nodeps --noscripts "$rr/r2.rpm" >/dev/null 2>&1 &&
    [[ -x $rr/root/usr/bin/slurm-usage ]] && grep -q 'edited by the admin' "$rr/root$CONF"; then
    ok "rpm -U to release 2 keeps the admin's edit of $CONF"
  else
    bad "rpm -U to release 2 (scratch root $rr/root)" "$(ls -lR "$rr/root/etc" 2>&1)"
  fi
  rpm --root "$rr/root" -e --nodeps --noscripts $PKG >/dev/null 2>&1 || true
  if grep -q 'edited by the admin' "$rr/root$CONF.rpmsave" 2>/dev/null; then ok "rpm -e saves the edited config as .rpmsave"; else bad "rpm -e: no $CONF.rpmsave"; fi
  rm -rf "$rr"
  scripts=$(rpm -qp --scripts "$rpmf" 2>/dev/null)
  for s in preinstall postinstall preuninstall postuninstall; do
    if grep -q "^$s scriptlet" <<<"$scripts"; then ok "rpm has a $s scriptlet"; else bad "rpm lacks a $s scriptlet"; fi
  done
else
  bad "no .rpm built"
fi

finish

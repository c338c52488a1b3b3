#!/usr/bin/env bash
# Installs the amd64 package into a throw-away root with dpkg --root, running its real
# maintainer scripts (they honour DPKG_ROOT and never touch the host), and checks files,
# owners, modes, the conffile, the system user and its groups, the systemd unit, `sentinel
# check` of the shipped config and `sentinel run` refusing it; then that the arm64 package is
# refused with a message that says what to install; then purge. Needs root (useradd --prefix).
#   PKG_VERSION=... scripts/test-package.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ver="${PKG_VERSION:-$(scripts/pkg-version.sh)}"
deb="dist/sentinel_${ver}_amd64.deb"
deb_arm="dist/sentinel_${ver}_arm64.deb"
for f in "$deb" "$deb_arm"; do
  [ -f "$f" ] || { echo "test-package: $f is missing: run make package" >&2; exit 1; }
done
if [ "$(id -u)" -ne 0 ]; then
  echo "test-package: needs root (the package's scripts add a system user inside the throw-away root)" >&2
  exit 1
fi

passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok   $*"; }
bad() { failed=$((failed + 1)); echo "FAIL $*"; }
expect() { # expect DESCRIPTION COMMAND...
  local what=$1; shift
  if "$@"; then ok "$what"; else bad "$what"; fi
}

# A throw-away root: dpkg's database and a Debian system's account files (root, dialout).
new_root() {
  local r
  r=$(mktemp -d /tmp/sentinel-pkgroot.XXXXXX)
  mkdir -p "$r"/var/lib/dpkg/{info,updates,triggers} "$r"/etc "$r"/usr/sbin "$r"/var/log
  touch "$r"/var/lib/dpkg/{status,available}
  printf 'root:x:0:0:root:/root:/bin/bash\n' >"$r/etc/passwd"
  printf 'root:*::0:99999:7:::\n' >"$r/etc/shadow"
  printf 'root:x:0:\ndialout:x:20:\n' >"$r/etc/group"
  printf 'root:*::\ndialout:*::\n' >"$r/etc/gshadow"
  chmod 0640 "$r/etc/shadow" "$r/etc/gshadow"
  [ -f /etc/login.defs ] && cp /etc/login.defs "$r/etc/"
  echo "$r"
}
dpkg_root() { local r=$1; shift; dpkg --root="$r" --force-not-root --force-script-chrootless --log=/dev/null "$@"; }

root=$(new_root)
root2=$(new_root)
trap 'rm -rf "$root" "$root2"' EXIT

echo "== install $deb into $root"
if ! out=$(dpkg_root "$root" -i "$deb" 2>&1); then
  echo "$out"
  bad "dpkg -i into a throw-away root"
  echo "$passed passed, $failed failed"
  exit 1
fi
echo "$out" | sed 's/^/   | /'
ok "dpkg -i into a throw-away root"
status=$(dpkg-query --admindir="$root/var/lib/dpkg" -W -f='${Status}' sentinel)
expect "package state is installed ($status)" test "$status" = "install ok installed"

# Files: path, mode, owner:group.
check_file() {
  local path=$1 mode=$2 own=$3 got
  if [ ! -e "$root$path" ]; then bad "$path exists"; return; fi
  got="$(stat -c '%a %u:%g' "$root$path")"
  expect "$path is $mode $own (got $got)" test "$got" = "$mode $own"
}
check_file /usr/bin/sentinel 755 0:0
check_file /etc/sentinel/sentinel.yaml 644 0:0
check_file /lib/systemd/system/sentinel.service 644 0:0
check_file /lib/udev/rules.d/60-sentinel-gpio.rules 644 0:0
check_file /usr/share/doc/sentinel/field-guide.md 644 0:0
for s in gate_all_in_one pillar handheld reduced_gate; do
  check_file "/usr/share/sentinel/templates/$s.yaml" 644 0:0
done
expect "the binary is a static amd64 ELF" bash -c "file -b '$root/usr/bin/sentinel' 2>/dev/null | grep -q 'x86-64.*statically linked' || ! command -v file >/dev/null"
conffiles=$(dpkg-query --admindir="$root/var/lib/dpkg" -W -f='${Conffiles}' sentinel)
expect "/etc/sentinel/sentinel.yaml is a conffile" grep -q '/etc/sentinel/sentinel.yaml' <<<"$conffiles"

# The system user: not root, a system uid, no login, in dialout and gpio.
user_line=$(grep '^sentinel:' "$root/etc/passwd" || true)
uid=$(cut -d: -f3 <<<"$user_line"); gid=$(cut -d: -f4 <<<"$user_line")
expect "user sentinel exists ($user_line)" test -n "$user_line"
expect "sentinel is not root (uid $uid)" test "${uid:-0}" -ne 0
expect "sentinel has a system uid (< 1000)" test "${uid:-1000}" -lt 1000
expect "sentinel cannot log in" grep -q ':/usr/sbin/nologin$' <<<"$user_line"
expect "sentinel is in group dialout" grep -Eq '^dialout:[^:]*:[0-9]+:(.*,)?sentinel(,|$)' "$root/etc/group"
expect "sentinel is in group gpio" grep -Eq '^gpio:[^:]*:[0-9]+:(.*,)?sentinel(,|$)' "$root/etc/group"
expect "sentinel is in group input" grep -Eq '^input:[^:]*:[0-9]+:(.*,)?sentinel(,|$)' "$root/etc/group"
expect "the host has no user sentinel added by the test" bash -c "! grep -q '^sentinel:' /etc/passwd || [ -n \"\${HOST_HAS_SENTINEL:-}\" ]"
check_file /etc/sentinel/secrets 750 "0:$gid"
check_file /var/lib/sentinel 750 "$uid:$gid"

# The systemd unit.
unit="$root/lib/systemd/system/sentinel.service"
for d in 'Type=notify' 'WatchdogSec=[0-9]+(s|min)?' 'Restart=always' 'StateDirectory=sentinel' 'ProtectSystem=strict' \
  'NoNewPrivileges=yes' 'PrivateTmp=yes' 'User=sentinel' 'SupplementaryGroups=dialout gpio input' 'DevicePolicy=closed' \
  'ExecStart=/usr/bin/sentinel run --config /etc/sentinel/sentinel.yaml'; do
  expect "unit has $d" grep -Eq "^$d\$" "$unit"
done
expect "unit lets the agent read the clock's sync state (adjtimex; no ProtectClock)" bash -c "grep -q '^SystemCallFilter=adjtimex\$' '$unit' && ! grep -q '^ProtectClock=yes' '$unit'"
expect "unit does not run as root" bash -c "! grep -Eq '^User=(root|0)\$' '$unit'"
expect "unit allows only tty, gpiochip, video and input devices" bash -c "! grep '^DeviceAllow=' '$unit' | grep -Ev 'char-(ttyS|ttyAMA|ttyUSB|ttyACM|gpiochip|video4linux|input) rw\$'"
if command -v systemd-analyze >/dev/null; then
  vout=$(systemd-analyze verify --root="$root" /lib/systemd/system/sentinel.service 2>&1 || true)
  expect "systemd-analyze verify finds no unknown setting" bash -c "! grep -Ei 'unknown|invalid|failed to parse' <<<\"\$1\"" _ "$vout"
fi

# The shipped config is valid but not provisioned: check says so, and run refuses it.
bin="$root/usr/bin/sentinel"
expect "sentinel version runs" "$bin" version
cout=$("$bin" check --config "$root/etc/sentinel/sentinel.yaml" 2>&1) && rc=0 || rc=$?
expect "sentinel check reports the shipped config as not provisioned (exit $rc)" bash -c "test $rc -eq 2 && grep -q 'NOT PROVISIONED' <<<\"\$1\"" _ "$cout"
rout=$(cd "$root" && timeout 20 "$bin" run --config "$root/etc/sentinel/sentinel.yaml" 2>&1) && rc=0 || rc=$?
expect "sentinel run refuses the unprovisioned config (exit $rc)" test "$rc" -eq 1
expect "the refusal says to provision" grep -q 'run sentinel provision' <<<"$rout"

# Provision the installed unit from the shipped template; then run gets past the refusal (and
# stops at the first device or path that this machine does not have).
work=$(mktemp -d); trap 'rm -rf "$root" "$root2" "$work"' EXIT
head -c 24 /dev/urandom | base64 >"$work/secret"
head -c 32 /dev/urandom | base64 >"$work/platform.pub"
pout=$("$bin" provision --style handheld --device-id hh-07 --venue 350582-0001 --platform-url http://127.0.0.1:8700 \
  --template "$root/usr/share/sentinel/templates/handheld.yaml" --out "$root/etc/sentinel" --owner "" \
  --app-key AK-hh-07 --app-secret-file "$work/secret" --platform-key "$work/platform.pub" \
  --broker tcp://127.0.0.1:1883 --scanner-port "$work/ttyNONE" 2>&1) && ok "provision with the shipped template" || { echo "$pout"; bad "provision with the shipped template"; }
check_file /etc/sentinel/secrets/app-secret 600 0:0
cout=$("$bin" check --config "$root/etc/sentinel/sentinel.yaml" 2>&1) && ok "sentinel check of the provisioned config" || bad "sentinel check of the provisioned config: $cout"
rout=$(cd "$work" && timeout 20 "$bin" run --config "$root/etc/sentinel/sentinel.yaml" 2>&1) && rc=0 || rc=$?
expect "run of the provisioned unit gets past the refusal (exit $rc: $(grep -o 'cannot start: [a-z.]*' <<<"$rout" | head -1))" bash -c "grep -q 'cannot start' <<<\"\$1\" && ! grep -q 'not provisioned' <<<\"\$1\"" _ "$rout"

# The wrong architecture: dpkg refuses, naming both; forced past dpkg, our preinst refuses
# and says which package to install.
if out=$(dpkg_root "$root2" -i "$deb_arm" 2>&1); then
  bad "the arm64 package installed on amd64"
else
  expect "dpkg refuses arm64 on amd64: $(grep -o 'package architecture.*' <<<"$out" | head -1)" grep -q 'does not match system' <<<"$out"
fi
if out=$(dpkg_root "$root2" --force-architecture -i "$deb_arm" 2>&1); then
  bad "the arm64 package installed with --force-architecture"
else
  expect "preinst refuses arm64 and names the package to install" grep -q 'install the amd64 package instead' <<<"$out"
fi
expect "nothing of the arm64 package stayed" test ! -e "$root2/usr/bin/sentinel"

# Remove and purge: files go, the outbox stays.
touch "$root/var/lib/sentinel/queue.db"
if out=$(dpkg_root "$root" -P sentinel 2>&1); then ok "dpkg -P"; else echo "$out"; bad "dpkg -P"; fi
expect "purge removed the binary" test ! -e "$root/usr/bin/sentinel"
expect "purge removed the config" test ! -e "$root/etc/sentinel/sentinel.yaml"
expect "purge removed the secrets" test ! -e "$root/etc/sentinel/secrets"
expect "purge kept the outbox (undelivered records)" test -e "$root/var/lib/sentinel/queue.db"

echo "test-package: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

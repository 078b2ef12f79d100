#!/usr/bin/env bash
# The Debian package, end to end (docs/operations.md, "Installing the
# package"):
#
#   package.sh SOURCE_DIR
#
# builds the packages from a copy of the source tree (dpkg-buildpackage),
# runs lintian (any error fails), installs them with apt-get, checks the
# files, the strapontin user, the conffile and the unit (systemd-analyze
# verify), then, without systemd, runs the installed daemon as the
# strapontin user on a throwaway PostgreSQL cluster with a development
# certificate: the installed CLI logs in and calls methods, the web desk is
# served from the package's directory, --reload (the unit's ExecReload)
# reloads, SIGTERM stops. Last, dpkg --purge, and nothing the package made
# may be left.
#
# It installs into this machine's /usr and /etc, so it needs root: run as
# another user it exits 77, which ctest reports as skipped (never passed).
# Whatever happens, the exit trap stops the daemon and purges the packages.
# Every step has its own time limit, all of them together well under the
# test's ctest TIMEOUT, so that ctest never kills it before the trap ran.
set -euo pipefail

prog=package.sh
src=${1:?usage: $prog SOURCE_DIR}
src=$(cd "$src" && pwd -P)
scripts=$src/scripts
packages=(strapontin libstrapontin0 libstrapontin-dev)

# Greps read a command's whole output (<<<"$(...)"), never a pipe: with
# pipefail, grep -q leaving early would fail the writer with SIGPIPE.
# known P: dpkg knows package P (installed, or its configuration left).
known() {
	local status
	status=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) || return 1
	[[ -n "$status" && "$status" != "unknown ok not-installed" ]]
}
say() { echo "$prog: [${SECONDS}s] $*"; }
fail() {
	echo "$prog: FAIL: $*" >&2
	exit 1
}

if ((EUID != 0)); then
	echo "$prog: SKIPPED: installing a package needs root (CI runs as root)" >&2
	exit 77
fi
for tool in dpkg-buildpackage dh lintian apt-get systemd-analyze setpriv psql python3; do
	command -v "$tool" >/dev/null || fail "$tool is missing (run scripts/deps)"
done

# One run at a time on this machine: the packages and the user are global.
lock=/run/lock/strapontin-package-test.lock
[[ -d /run/lock ]] || lock=/tmp/strapontin-package-test.lock
exec 9>"$lock"
flock -w 300 9 || fail "another package test holds $lock"

# Never touch an installation or an account this test did not make.
for p in "${packages[@]}"; do
	if known "$p"; then
		fail "package $p is already on this machine: not touching it"
	fi
done
getent passwd strapontin >/dev/null && fail "a strapontin user exists already: not touching it"
getent group strapontin >/dev/null && fail "a strapontin group exists already: not touching it"
[[ -e /etc/strapontin ]] && fail "/etc/strapontin exists already: not touching it"

# Readable by all: apt's _apt user reads the .deb files, the strapontin
# user the test configuration.
tmp=$(mktemp -d /tmp/strapontin-pkg.XXXXXX)
chmod 755 "$tmp"
daemon_pid=""
installed=0

cleanup() {
	local rc=$?
	set +e
	if [[ -n "$daemon_pid" ]] && kill -0 "$daemon_pid" 2>/dev/null; then
		kill -KILL "$daemon_pid"
		wait "$daemon_pid" 2>/dev/null
	fi
	if ((installed)); then
		timeout 120 dpkg --purge "${packages[@]}" >/dev/null 2>&1 ||
			echo "$prog: could not purge ${packages[*]}: do it by hand" >&2
		# It was not there before (checked above): a kept key of ours.
		rm -rf /etc/strapontin
	fi
	"$scripts/pg-tmp" stop "$tmp/pg" >/dev/null 2>&1
	rm -rf -- "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# ---- build ----------------------------------------------------------------
version=$(sed -n 's/^project(strapontin VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
[[ -n "$version" ]] || fail "no version in CMakeLists.txt"
deb_version=$(cd "$src" && dpkg-parsechangelog -S Version)
[[ "$deb_version" == "$version" ]] ||
	fail "debian/changelog says $deb_version, CMakeLists.txt $version"

# The copy: what git knows of (untracked files too, not the ignored build
# trees); a tree without git is copied whole, build trees left out.
tree=$tmp/src/strapontin-$version
mkdir -p "$tree"
if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	(cd "$src" && git ls-files -z --cached --others --exclude-standard |
		xargs -0 cp --parents -t "$tree")
else
	tar -C "$src" --exclude='./build*' --exclude=./.cache --exclude=./.demo \
		-cf - . | tar -C "$tree" -xf -
fi

say "dpkg-buildpackage (log: build.log)"
(cd "$tree" && timeout 720 nice -n 10 dpkg-buildpackage -b -us -uc -j2) \
	>"$tmp/build.log" 2>&1 || {
	tail -n 40 "$tmp/build.log" >&2
	fail "dpkg-buildpackage failed"
}
arch=$(dpkg --print-architecture)
debs=()
for p in "${packages[@]}"; do
	f=$tmp/src/${p}_${version}_$arch.deb
	[[ -f "$f" ]] || fail "dpkg-buildpackage made no $f"
	debs+=("$f")
done
# The test suite is not part of the package build (debian/rules).
grep -q 'Built target \(unit\|itest\)_' "$tmp/build.log" && fail "the package build built tests"

say "lintian"
timeout 300 lintian --fail-on error "$tmp/src/strapontin_${version}_$arch.changes" \
	>"$tmp/lintian.log" 2>&1 || {
	cat "$tmp/lintian.log" >&2
	fail "lintian found errors"
}
grep '^[EW]: ' "$tmp/lintian.log" || true

# ---- install --------------------------------------------------------------
say "apt-get install"
installed=1
DEBIAN_FRONTEND=noninteractive timeout 180 apt-get install -y -q -o DPkg::Lock::Timeout=60 \
	--no-install-recommends "${debs[@]}" >"$tmp/apt.log" 2>&1 || {
	cat "$tmp/apt.log" >&2
	fail "apt-get install failed"
}

for f in /usr/sbin/strapontind /usr/bin/strapontin; do
	[[ -x "$f" ]] || fail "$f is not installed"
done
for f in /usr/share/man/man1/strapontin.1.gz /usr/share/man/man5/strapontind.conf.5.gz \
	/usr/share/man/man8/strapontind.8.gz /usr/share/locale/fr/LC_MESSAGES/strapontin.mo \
	/usr/share/bash-completion/completions/strapontin /usr/include/strapontin.h \
	/usr/share/doc/strapontin/copyright; do
	[[ -f "$f" ]] || fail "$f is not installed"
done
[[ ! -e /usr/bin/strapontin-bench ]] || fail "strapontin-bench is installed"
# The unit and the web desk, as they are in the tree.
cmp "$src/conf/strapontind.service" /lib/systemd/system/strapontind.service ||
	fail "the installed unit differs from conf/strapontind.service"
diff -r -x README.md "$src/web" /usr/share/strapontin/www ||
	fail "/usr/share/strapontin/www differs from web/"
[[ ! -e /usr/share/strapontin/www/README.md ]] || fail "web/README.md is installed"
# The CLI finds its French catalogue where the package put it.
fr=$(env -u LANGUAGE -u LC_ALL -u LC_MESSAGES -u LANG STRAPONTIN_LANG=fr /usr/bin/strapontin --help | sed -n 1p)
en=$(STRAPONTIN_LANG=en /usr/bin/strapontin --help | sed -n 1p)
[[ -n "$fr" && "$fr" != "$en" ]] || fail "the CLI does not speak French: $fr"
grep -q "^strapontind $version " <<<"$(/usr/sbin/strapontind --version)" ||
	fail "strapontind --version does not say $version"
# Its default configuration is the conffile.
grep -qx /etc/strapontin/strapontind.conf <<<"$(strings /usr/sbin/strapontind)" ||
	fail "strapontind's default configuration is not /etc/strapontin/strapontind.conf"

# The library: its package's file links and runs.
printf '%s\n' '#include <strapontin.h>' '#include <stdio.h>' \
	'int main(void) { struct st_error e = {0}; st_error_clear(&e); puts("ok"); return 0; }' \
	>"$tmp/lib.c"
# shellcheck disable=SC2046 # pkg-config's words are separate flags
cc -o "$tmp/lib" "$tmp/lib.c" $(pkg-config --cflags --libs strapontin) ||
	fail "cannot build against libstrapontin-dev"
[[ "$("$tmp/lib")" == ok ]] || fail "a program linked with libstrapontin does not run"

# The user and the conffile.
IFS=: read -r _ _ uid gid _ home shell < <(getent passwd strapontin) ||
	fail "no strapontin user"
((uid < 1000)) || fail "strapontin is not a system user (uid $uid)"
[[ "$(getent group strapontin | cut -d: -f3)" == "$gid" ]] ||
	fail "strapontin's primary group is not strapontin"
[[ "$shell" == /usr/sbin/nologin && "$home" == /nonexistent ]] ||
	fail "strapontin has shell $shell and home $home"
grep -q '^ /etc/strapontin/strapontind.conf ' <<<"$(dpkg-query -W -f='${Conffiles}\n' strapontin)" ||
	fail "/etc/strapontin/strapontind.conf is not a conffile"
[[ "$(stat -c '%a %U %G' /etc/strapontin)" == "750 root strapontin" ]] ||
	fail "/etc/strapontin is $(stat -c '%a %U %G' /etc/strapontin)"
[[ "$(stat -c '%a %U %G' /etc/strapontin/strapontind.conf)" == "640 root strapontin" ]] ||
	fail "strapontind.conf is $(stat -c '%a %U %G' /etc/strapontin/strapontind.conf)"
cmp "$src/conf/strapontind.conf" /etc/strapontin/strapontind.conf ||
	fail "the installed configuration differs from conf/strapontind.conf"

# Installed, neither enabled nor started (debian/rules).
[[ ! -e /etc/systemd/system/multi-user.target.wants/strapontind.service ]] ||
	fail "the unit was enabled on installation"
timeout 60 systemd-analyze verify /lib/systemd/system/strapontind.service ||
	fail "systemd-analyze verify rejects the unit"

# ---- run the installed daemon as strapontin, without systemd --------------
say "daemon"
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
timeout 120 "$scripts/pg-tmp" start "$tmp/pg" >/dev/null
pg_port=$(cat "$tmp/pg/port")
psql "host=127.0.0.1 port=$pg_port user=postgres dbname=postgres" -Xq -v ON_ERROR_STOP=1 \
	-c 'CREATE DATABASE strapontin OWNER strapontin_owner' >/dev/null
timeout 60 "$scripts/mkcert" "$tmp/certs" >/dev/null
chmod 755 "$tmp/certs"
chown strapontin "$tmp/certs/server.key"
chmod 600 "$tmp/certs/server.key"

rpc_port=$(free_port)
http_port=$(free_port)
conf=$tmp/strapontind.conf
# The www_dir is not set: the daemon's default must be the package's.
cat >"$conf" <<EOF
[server]
listen = 127.0.0.1:$rpc_port
[tls]
cert = $tmp/certs/server.pem
key = $tmp/certs/server.key
[http]
listen = 127.0.0.1:$http_port
[database]
conninfo = host=127.0.0.1 port=$pg_port dbname=strapontin user=strapontin
migrate_conninfo = host=127.0.0.1 port=$pg_port dbname=strapontin user=strapontin_owner
EOF
chmod 644 "$conf"

as_strapontin=(setpriv --reuid=strapontin --regid=strapontin --init-groups --)
timeout 60 "${as_strapontin[@]}" /usr/sbin/strapontind -c "$conf" --check-config ||
	fail "--check-config failed"
timeout 120 "${as_strapontin[@]}" /usr/sbin/strapontind -c "$conf" --migrate >"$tmp/migrate.log" 2>&1 || {
	cat "$tmp/migrate.log" >&2
	fail "--migrate failed"
}
password=package-test-password
printf '%s\n' "$password" |
	timeout 60 "${as_strapontin[@]}" /usr/sbin/strapontind -c "$conf" --add-admin admin@example.org \
		>/dev/null 2>&1 || fail "--add-admin failed"

log=$tmp/daemon.log
# setpriv execs the daemon: $! is the daemon's pid.
"${as_strapontin[@]}" /usr/sbin/strapontind -c "$conf" 2>"$log" &
daemon_pid=$!

export HOME=$tmp/home STRAPONTIN_SERVER=127.0.0.1:$rpc_port STRAPONTIN_CA=$tmp/certs/ca.pem
mkdir -p "$HOME"
cli() { timeout 30 /usr/bin/strapontin "$@"; }
# Serving once system.health says the database is up (system.ping answers
# before the pool is): up to 30 s, while the daemon lives.
for ((i = 0; ; i++)); do
	health=$(cli --json call system.health 2>/dev/null) || health=""
	[[ "$health" =~ \"db\":\ *\"ok\" ]] && break
	kill -0 "$daemon_pid" 2>/dev/null || {
		cat "$log" >&2
		fail "the daemon exited at start"
	}
	((i < 300)) || {
		cat "$log" >&2
		fail "the daemon does not answer system.health with db ok"
	}
	sleep 0.1
done
[[ "$(ps -o user= -p "$daemon_pid")" == strapontin ]] || fail "the daemon does not run as strapontin"
STRAPONTIN_PASSWORD=$password cli login admin@example.org >/dev/null ||
	fail "the CLI cannot log in"
grep -q '"admin@example.org"' <<<"$(cli --json whoami)" || fail "whoami does not name the admin"
# The web desk, from the package's directory.
python3 - "$http_port" "$tmp/certs/ca.pem" <<'EOF' || fail "the web desk is not served from /usr/share/strapontin/www"
import ssl, sys, urllib.request
ctx = ssl.create_default_context(cafile=sys.argv[2])
url = "https://127.0.0.1:%s/" % sys.argv[1]
body = urllib.request.urlopen(url, context=ctx, timeout=10).read()
sys.exit(body != open("/usr/share/strapontin/www/index.html", "rb").read())
EOF

say "reload"
# As the unit's ExecReload does, as the service user: exit 0 once the
# daemon says it reloaded (docs/operations.md, "systemd").
rc=0
timeout 60 runuser -u strapontin -- /usr/sbin/strapontind --reload "$daemon_pid" || rc=$?
((rc == 0)) || fail "strapontind --reload exited $rc"
for ((i = 0; ; i++)); do
	grep -q 'configuration reloaded' "$log" && break
	grep -q 'reload failed' "$log" && fail "the reload failed: $(grep 'reload failed' "$log")"
	((i < 300)) || fail "no reload logged after SIGHUP"
	sleep 0.1
done
cli call system.ping >/dev/null || fail "no answer after the reload"

say "stop"
kill -TERM "$daemon_pid"
rc=0
timeout 60 tail --pid="$daemon_pid" -f /dev/null || fail "the daemon did not stop on SIGTERM"
wait "$daemon_pid" || rc=$?
daemon_pid=""
((rc == 0)) || {
	cat "$log" >&2
	fail "the daemon exited $rc on SIGTERM"
}

# ---- purge ----------------------------------------------------------------
say "purge"
listed=$(dpkg -L "${packages[@]}")
timeout 120 dpkg --purge "${packages[@]}" >"$tmp/purge.log" 2>&1 || {
	cat "$tmp/purge.log" >&2
	fail "dpkg --purge failed"
}
installed=0
for p in "${packages[@]}"; do
	known "$p" &&
		fail "$p is still known to dpkg after the purge"
done
# Every file is gone, and every directory that is the package's own.
while read -r path; do
	# Directories (/lib is a link to one) may be shared with others.
	[[ -d "$path" ]] && continue
	[[ -e "$path" || -L "$path" ]] && fail "$path is left after the purge"
done <<<"$listed"
for d in /etc/strapontin /usr/share/strapontin /usr/share/doc/strapontin; do
	[[ ! -e "$d" ]] || fail "$d is left after the purge"
done
getent passwd strapontin >/dev/null && fail "the strapontin user is left after the purge"
getent group strapontin >/dev/null && fail "the strapontin group is left after the purge"

# A key the administrator put into /etc/strapontin outlives a purge, with
# its group given back to root (debian/strapontin.postrm).
say "purge, with the administrator's key in /etc/strapontin"
installed=1
timeout 120 dpkg -i "${debs[0]}" >"$tmp/dpkg-i.log" 2>&1 || {
	cat "$tmp/dpkg-i.log" >&2
	fail "dpkg -i strapontin failed"
}
echo "not a key" >/etc/strapontin/server.key
chgrp strapontin /etc/strapontin/server.key
chmod 640 /etc/strapontin/server.key
timeout 120 dpkg --purge strapontin >"$tmp/purge.log" 2>&1 || {
	cat "$tmp/purge.log" >&2
	fail "dpkg --purge failed"
}
installed=0
[[ "$(ls -A /etc/strapontin)" == server.key ]] ||
	fail "/etc/strapontin holds $(ls -A /etc/strapontin) after the purge, not server.key alone"
[[ "$(stat -c '%a %U %G' /etc/strapontin/server.key)" == "640 root root" ]] ||
	fail "the kept key is $(stat -c '%a %U %G' /etc/strapontin/server.key)"
[[ "$(stat -c '%U %G' /etc/strapontin)" == "root root" ]] ||
	fail "the kept /etc/strapontin is $(stat -c '%U %G' /etc/strapontin)"
getent passwd strapontin >/dev/null && fail "the strapontin user is left after the purge"
getent group strapontin >/dev/null && fail "the strapontin group is left after the purge"
rm -rf /etc/strapontin
say "ok"

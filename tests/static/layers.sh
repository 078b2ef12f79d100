#!/usr/bin/env bash
# The daemon is built in layers (docs/architecture.md): each file may
# include the headers of its own layer and of the layers below, never one
# above; a lower layer reaches a higher one only through callbacks. Every
# daemon file must be listed here, so a new one is placed on purpose.
set -euo pipefail
src=${1:?usage: layers.sh SOURCE_DIR}
cd "$src/daemon"

declare -A layer=(
	# 0 base
	[util]=0 [log]=0 [config]=0 [tls]=0 [pwhash]=0 [workpool]=0
	[params]=0 [session]=0 [ticket]=0 [version]=0 [qr]=0
	[httpmsg]=0 [addrcount]=0 [proxyproto]=0 [netlist]=0 [metrics]=0
	[sdnotify]=0 [reloadsig]=0 [idkey]=0
	# 1 infra
	[db]=1 [migrate]=1
	# 2 transport
	[conn]=2 [frame]=2 [http]=2 [proxywait]=2 [metrics_listen]=2
	# 3 protocol
	[rpc]=3
	# 4 application
	[app]=4 [sqlcall]=4 [methods]=4 [methods_permanence]=4
	[methods_report]=4 [auth]=4 [events]=4 [system]=4 [booking_batch]=4 [identity]=4 [methods_identity]=4
	# 5 assembly
	[server]=5 [janitor]=5 [main]=5 [mail]=5
)
names=(base infra transport protocol application assembly)
fail=0
for f in *.c *.h *.h.in; do
	[ -e "$f" ] || continue
	base=${f%%.*}
	if [ -z "${layer[$base]+x}" ]; then
		echo "$f: not placed in a layer (tests/static/layers.sh)"
		fail=1
		continue
	fi
	mine=${layer[$base]}
	while IFS= read -r inc; do
		dep=${inc%%.*}
		[ "$dep" = "$base" ] && continue
		[ "$dep" = "migrations" ] && continue	# generated SQL, infra
		if [ -z "${layer[$dep]+x}" ]; then
			echo "$f includes \"$inc\", which is in no layer"
			fail=1
		elif ((layer[$dep] > mine)); then
			echo "$f (${names[$mine]}) includes \"$inc\" (${names[${layer[$dep]}]})"
			fail=1
		fi
	done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f")
done
# Only the assembly names the daemon's global state.
if hits=$(grep -nw 'srv' ./*.c ./*.h | grep -vE '^\./(server|main)\.c:'); then
	echo "the server's state named outside the assembly:"
	echo "$hits"
	fail=1
fi
[ "$fail" = 0 ] && echo "every include goes down the layers"
exit "$fail"

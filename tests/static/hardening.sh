#!/usr/bin/env bash
# The daemon is built hardened (the hardening block of CMakeLists.txt): a
# position-independent executable, full RELRO (relocations done at start,
# then read-only), stack canaries and _FORTIFY_SOURCE's checked functions.
# Run on the plain build only: the sanitizer build goes without.
set -euo pipefail
bin=${1:?usage: hardening.sh BINARY}
command -v readelf >/dev/null || { echo "readelf not found (binutils: run scripts/deps)"; exit 1; }
[[ -f "$bin" ]] || { echo "$bin: no such file"; exit 1; }
fail=0

if ! readelf -h "$bin" | grep -E '^ *Type: +DYN' >/dev/null; then
	echo "not position-independent (ELF type is not DYN)"; fail=1
fi
if ! readelf -l "$bin" | grep 'GNU_RELRO' >/dev/null; then
	echo "no GNU_RELRO segment"; fail=1
fi
# BIND_NOW: either DT_FLAGS has BIND_NOW or DT_FLAGS_1 has NOW.
if ! readelf -d "$bin" | grep -E '\(FLAGS\).*BIND_NOW|\(FLAGS_1\).*\bNOW\b' >/dev/null; then
	echo "no BIND_NOW: RELRO is only partial"; fail=1
fi
syms=$(readelf --dyn-syms -W "$bin")
if ! grep -qw '__stack_chk_fail' <<<"$syms"; then
	echo "no __stack_chk_fail: built without stack protector"; fail=1
fi
# Any of glibc's fortified functions: __memcpy_chk, __snprintf_chk...
if ! grep -vw '__stack_chk_fail' <<<"$syms" | grep -E '\b__[a-z0-9_]+_chk\b' >/dev/null; then
	echo "no __*_chk function: built without _FORTIFY_SOURCE"; fail=1
fi
[ "$fail" = 0 ] && echo "$bin: PIE, full RELRO, stack protector, FORTIFY"
exit "$fail"

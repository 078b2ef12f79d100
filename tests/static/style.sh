#!/usr/bin/env bash
# The code style (docs/architecture.md, "Code style"): what a machine can
# check of it. Tabs indent, no trailing white space, no carriage return,
# every file ends with a newline.
set -euo pipefail
src=${1:?usage: style.sh SOURCE_DIR}
cd "$src"
fail=0
files=$(ls daemon/*.[ch] client/*.[ch] tests/*/*.[ch] tests/*/*.inc 2>/dev/null)
# shellcheck disable=SC2086
if hits=$(grep -nE '[[:space:]]$' $files); then
	echo "trailing white space:"; echo "$hits"; fail=1
fi
# shellcheck disable=SC2086
if hits=$(grep -nE '^ {8}' $files); then
	echo "indented with spaces (use tabs):"; echo "$hits"; fail=1
fi
# shellcheck disable=SC2086
if hits=$(grep -nlP '\r' $files); then
	echo "carriage returns:"; echo "$hits"; fail=1
fi
for f in $files; do
	if [ -s "$f" ] && [ "$(tail -c 1 "$f" | od -An -c | tr -d ' ')" != '\n' ]; then
		echo "$f: no newline at the end"; fail=1
	fi
done
[ "$fail" = 0 ] && echo "the style holds"
exit "$fail"

#!/usr/bin/env bash
# The event loop never blocks (non-negotiable 5): blocking libpq calls may
# appear only in daemon/migrate.c, whose functions run before the loop
# starts (--migrate, --add-admin, the start-up schema check), and main.c
# and server_run() are the only callers of migrate_*. Sleeping calls have no
# place in the daemon at all.
set -euo pipefail
src=${1:?usage: no_blocking_calls.sh SOURCE_DIR}
cd "$src/daemon"
fail=0
blocking='\b(PQexec|PQexecParams|PQexecPrepared|PQprepare|PQdescribePrepared|PQconnectdb|PQconnectdbParams|PQsetdbLogin|PQping|PQpingParams|PQreset|PQsetnonblocking\(\w+, *0)\s*\('
if hits=$(grep -nE "$blocking" ./*.c | grep -v '^./migrate.c:'); then
	echo "blocking libpq call outside migrate.c:"; echo "$hits"; fail=1
fi
if hits=$(grep -nE '\b(sleep|usleep|nanosleep|system|popen)\s*\(' ./*.c); then
	echo "sleeping or forking call in the daemon:"; echo "$hits"; fail=1
fi
if hits=$(grep -nE '\bmigrate_(apply|pending|add_admin)\s*\(' ./*.c |
    grep -vE "^./(main|migrate)\.c:|^./server\.c:.*pending = migrate_pending"); then
	echo "migrate_* called outside start-up:"; echo "$hits"; fail=1
fi
# Every query on the request path goes through the pool's non-blocking
# PQsendQueryPrepared.
grep -q 'PQsendQueryPrepared' db.c || { echo "db.c no longer sends prepared queries"; fail=1; }
grep -q 'PQsetnonblocking(dc->pg, 1)' db.c || { echo "db.c no longer sets non-blocking"; fail=1; }
[ "$fail" = 0 ] && echo "no blocking call on the request path"
exit "$fail"

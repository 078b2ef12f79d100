#!/usr/bin/env python3
# The functions of sql/api are written so that PostgreSQL either inlines
# them or keeps their plans for the session (docs/operations.md, "The sql/
# tree"). A LANGUAGE sql function that PostgreSQL cannot inline is parsed
# and planned again at each call of the statement that uses it; a PL/pgSQL
# one keeps its plans. So a LANGUAGE sql function must be one of:
#   - a helper (schema core) whose body is one SELECT of expressions: no
#     FROM, no sub-select, no WITH, no data change (inlined into its caller);
#   - a set-returning helper (schema core) whose body is one SELECT
#     (inlined when it is called in a FROM clause).
# Entry points (schema api) carry SET search_path, which stops inlining:
# they are PL/pgSQL. Anything else is reported with its file and name.
import re
import sys
from pathlib import Path

src = Path(sys.argv[1] if len(sys.argv) > 1 else '.')
func_re = re.compile(
    r'CREATE OR REPLACE FUNCTION\s+([a-z_]+)\.([a-z_0-9]+)\s*\((.*?)\$\$(.*?)\$\$',
    re.S)


def strip(body):
    """The body without comments and literals, so that words in them
    (a message saying "from") count for nothing."""
    body = re.sub(r"--[^\n]*", ' ', body)
    body = re.sub(r"'(?:[^']|'')*'", "''", body)
    body = re.sub(r'"(?:[^"]|"")*"', '""', body)
    return body


def problem(schema, head, body):
    if schema == 'api':
        return 'an entry point (SET search_path, never inlined): write it in PL/pgSQL'
    code = strip(body).strip().rstrip(';').strip()
    if ';' in code:
        return 'several statements cannot be inlined: write it in PL/pgSQL'
    words = re.findall(r'[A-Za-z_]+', code)
    upper = [w.upper() for w in words]
    if not upper or upper[0] != 'SELECT':
        return 'not a SELECT, so never inlined: write it in PL/pgSQL'
    if {'INSERT', 'UPDATE', 'DELETE', 'WITH'} & set(upper):
        return 'a data change or WITH is never inlined: write it in PL/pgSQL'
    if re.search(r'RETURNS\s+(SETOF|TABLE)\b', head):
        return None
    if upper.count('SELECT') > 1:
        return 'a sub-select stops inlining: write it in PL/pgSQL'
    # "extract(field FROM x)" is an expression, not a FROM clause
    rest = re.sub(r'(?i)\bextract\s*\(\s*\w+\s+from\b', 'extract(', code)
    if re.search(r'(?i)\bFROM\b', rest):
        return 'a FROM clause stops inlining: write it in PL/pgSQL'
    return None


fail = 0
count = 0
for path in sorted((src / 'sql' / 'api').glob('*.sql')):
    text = path.read_text()
    for m in func_re.finditer(text):
        schema, name, head, body = m.groups()
        if not re.search(r'\bLANGUAGE\s+sql\b', head, re.I):
            continue
        count += 1
        why = problem(schema, head, body)
        if why:
            print(f'{path.relative_to(src)}: {schema}.{name}: {why}')
            fail = 1
if count == 0:
    print('sql_functions: no LANGUAGE sql function found: is the tree there?')
    fail = 1
sys.exit(fail)

# Compiles sql/schema and sql/api into a C table, so the installed daemon
# needs no data directory to migrate its database (daemon/migrate.c).
#   sql/schema/NNN_name.sql  DDL, applied once each in NNN order, its
#                            SHA-256 recorded (append-only files);
#   sql/api/NN_domain.sql    functions, triggers, views: all re-applied by
#                            every --migrate, in NN order, in one transaction.
# An old-style sql/NNN_name.sql (a migration written before this layout)
# must be folded into them first: it stops the build.
# Inputs: SQL_DIR, OUTPUT.
file(GLOB old RELATIVE ${SQL_DIR} ${SQL_DIR}/[0-9][0-9][0-9]_*.sql)
if(old)
  message(FATAL_ERROR "sql/${old}: an old-style migration; fold it into "
          "sql/schema and sql/api first (docs/operations.md, \"The sql/ tree\")")
endif()

set(body "/* Generated from sql/ by cmake/embed_sql.cmake: do not edit. */\n#include \"migrate.h\"\n\n")
set(i 0)
foreach(kind schema api)
  if(kind STREQUAL "schema")
    set(pattern "[0-9][0-9][0-9]_*.sql")
  else()
    set(pattern "[0-9][0-9]_*.sql")
  endif()
  file(GLOB files RELATIVE ${SQL_DIR}/${kind} ${SQL_DIR}/${kind}/${pattern})
  list(SORT files)
  set(table "const struct sql_file ${kind}_files[] = {\n")
  set(n 0)
  set(last -1)
  foreach(f IN LISTS files)
    file(READ ${SQL_DIR}/${kind}/${f} hex HEX)
    string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," hex "${hex}")
    string(REGEX MATCH "^[0-9]+" num "${f}")
    math(EXPR version "${num}" OUTPUT_FORMAT DECIMAL)
    if(version EQUAL last)
      message(FATAL_ERROR "sql/${kind}/${f}: two files numbered ${num}")
    endif()
    set(last ${version})
    string(APPEND body "static const char f${i}[] = {${hex}0x00};\n")
    string(APPEND table "\t{${version}, \"${f}\", f${i}},\n")
    math(EXPR i "${i}+1")
    math(EXPR n "${n}+1")
  endforeach()
  string(APPEND table "};\nconst size_t ${kind}_files_count = ${n};\n")
  set(table_${kind} "${table}")
endforeach()
file(WRITE ${OUTPUT}.tmp "${body}\n${table_schema}\n${table_api}")
file(COPY_FILE ${OUTPUT}.tmp ${OUTPUT} ONLY_IF_DIFFERENT)

/*
 * JSON values for the programs' --json outputs (mproc-stat, mproc-bench):
 * one writer of strings and numbers, so that escaping and non-finite
 * numbers are handled the same way everywhere.
 */
#ifndef MPROC_TOOLS_JSON_H
#define MPROC_TOOLS_JSON_H

#include <stdio.h>

/* @s as a JSON string (quotes, backslashes and control characters
 * escaped), or null when @s is NULL. */
void mproc_tool_json_str(FILE *f, const char *s);
/* @v as a JSON number (10 significant digits), or null when it is not
 * finite. */
void mproc_tool_json_num(FILE *f, double v);

#endif /* MPROC_TOOLS_JSON_H */

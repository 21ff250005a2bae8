/* Hot loops of the manifest splitter (Sources/Manifests/Syntax/Splitter.swift), in C because they
 * touch every byte of a cluster dump before any parallel work can start. They only know JSON's
 * and YAML's lexical structure; they never decide validity (the real parsers do). */
#ifndef MANIFEST_SCAN_H
#define MANIFEST_SCAN_H

#include <stddef.h>
#include <stdint.h>

/* Skips one JSON value starting at buf[pos] (after any whitespace). Counts the newlines it
 * crosses into *line and sets *line_start to the offset after the last one. Returns the offset
 * just past the value, or -1 when the text is not structurally a value (unbalanced, a bare
 * delimiter, a string broken by a newline, or the end of the buffer). */
long bl_json_skip_value(const uint8_t *buf, size_t len, size_t pos, size_t *line, size_t *line_start);

/* Returns the offset of the next line starting at or after `pos` that is a YAML document marker
 * ("---" or "..." followed by a blank, a line break or the end), or `len` when there is none.
 * `pos` must be the start of a line. Counts the lines passed into *line. */
size_t bl_yaml_next_marker(const uint8_t *buf, size_t len, size_t pos, size_t *line);

/* 1 when some line starts with '%' (a YAML directive), else 0. */
int bl_yaml_has_directive(const uint8_t *buf, size_t len);

#endif

#include "manifest_scan.h"

#include <string.h>

static inline int is_space(uint8_t c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

long bl_json_skip_value(const uint8_t *buf, size_t len, size_t pos, size_t *line, size_t *line_start)
{
	long depth = 0;
	size_t i = pos;
	do {
		while (i < len && is_space(buf[i])) {
			if (buf[i] == '\n') {
				(*line)++;
				*line_start = i + 1;
				/* Indentation (kubectl's JSON is half spaces), eight bytes at a time. */
				uint64_t word;
				while (i + 9 <= len && (memcpy(&word, buf + i + 1, 8), word == 0x2020202020202020ULL))
					i += 8;
			}
			i++;
		}
		if (i >= len)
			return -1;
		uint8_t c = buf[i];
		switch (c) {
		case '{':
		case '[':
			depth++;
			i++;
			break;
		case '}':
		case ']':
			if (--depth < 0)
				return -1;
			i++;
			break;
		case '"':
			/* Strings in manifests are short: a byte loop beats two memchr calls per string.
			 * A backslash takes the next byte with it; a line break ends nothing well. */
			i++;
			for (;;) {
				if (i >= len)
					return -1;
				uint8_t d = buf[i];
				if (d == '"')
					break;
				if (d == '\n')
					return -1;
				if (d == '\\') {
					if (i + 1 < len && buf[i + 1] == '\n')
						return -1;
					i += 2;
					continue;
				}
				i++;
			}
			i++;
			break;
		case ',':
		case ':':
			if (depth == 0)
				return -1;
			i++;
			break;
		default: {
			/* A scalar (number, true, false, null) ends at anything that cannot be part of
			 * one: `1"a"` is two values, not one. */
			size_t start = i;
			while (i < len) {
				uint8_t d = buf[i];
				if (d == ',' || d == '}' || d == ']' || d == '"' || d == '{' || d == '[' || d == ':' || is_space(d))
					break;
				i++;
			}
			if (i == start)
				return -1;
		}
		}
	} while (depth > 0);
	return (long)i;
}

static inline int is_marker(const uint8_t *buf, size_t len, size_t at)
{
	if (at + 3 > len)
		return 0;
	uint8_t c = buf[at];
	if ((c != '-' && c != '.') || buf[at + 1] != c || buf[at + 2] != c)
		return 0;
	if (at + 3 == len)
		return 1;
	uint8_t n = buf[at + 3];
	return n == '\n' || n == ' ' || n == '\r' || n == '\t';
}

size_t bl_yaml_next_marker(const uint8_t *buf, size_t len, size_t pos, size_t *line)
{
	size_t i = pos;
	while (i < len) {
		if (is_marker(buf, len, i))
			return i;
		const uint8_t *nl = memchr(buf + i, '\n', len - i);
		if (!nl)
			return len;
		i = (size_t)(nl - buf) + 1;
		(*line)++;
	}
	return len;
}

int bl_yaml_has_directive(const uint8_t *buf, size_t len)
{
	size_t i = 0;
	while (i < len) {
		const uint8_t *p = memchr(buf + i, '%', len - i);
		if (!p)
			return 0;
		size_t at = (size_t)(p - buf);
		/* YAML breaks lines at LF, CRLF and a lone CR alike. */
		if (at == 0 || buf[at - 1] == '\n' || buf[at - 1] == '\r')
			return 1;
		i = at + 1;
	}
	return 0;
}

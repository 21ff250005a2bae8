/* libFuzzer target for the splitter's C byte loops (Sources/CManifestScan/manifest_scan.c), built
 * with ASan and UBSan. Besides memory errors it checks each function against a plain byte-by-byte
 * statement of its contract, and aborts on any difference.
 * Input: byte 0 picks the start offset (modulo the rest's length); the rest is the buffer, copied
 * to an allocation of exactly its size so any overread is caught. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manifest_scan.h"

#define CHECK(cond, ...)                                                              \
	do {                                                                          \
		if (!(cond)) {                                                        \
			fprintf(stderr, "scan_fuzz: %s: ", #cond);                    \
			fprintf(stderr, __VA_ARGS__);                                 \
			fputc('\n', stderr);                                          \
			abort();                                                      \
		}                                                                     \
	} while (0)

static size_t count_newlines(const uint8_t *b, size_t from, size_t to)
{
	size_t n = 0;
	for (size_t i = from; i < to; i++)
		n += b[i] == '\n';
	return n;
}

static int is_marker_line(const uint8_t *b, size_t len, size_t at)
{
	if (len - at < 3 || (b[at] != '-' && b[at] != '.') || b[at + 1] != b[at] || b[at + 2] != b[at])
		return 0;
	return len - at == 3 || b[at + 3] == '\n' || b[at + 3] == ' ' || b[at + 3] == '\r' || b[at + 3] == '\t';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t len = size - 1;
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf)
		return 0;
	memcpy(buf, data + 1, len);
	size_t pos = len ? data[0] % len : 0;

	/* bl_json_skip_value: the value ends inside the buffer, after pos; every newline it crosses
	 * is counted (strings cannot hold one, scalars stop at one) and line_start follows the last. */
	if (len > 0) {
		size_t line = 7, line_start = 3;
		long end = bl_json_skip_value(buf, len, pos, &line, &line_start);
		if (end >= 0) {
			CHECK((size_t)end > pos && (size_t)end <= len, "end %ld pos %zu len %zu", end, pos, len);
			size_t nl = count_newlines(buf, pos, (size_t)end);
			CHECK(line == 7 + nl, "line %zu, %zu newlines crossed", line, nl);
			size_t last = 0;
			for (size_t i = pos; i < (size_t)end; i++)
				if (buf[i] == '\n')
					last = i + 1;
			CHECK(nl == 0 ? line_start == 3 : line_start == last, "line_start %zu, expected %zu", line_start, last);
			uint8_t first = 0;
			for (size_t i = pos; i < (size_t)end; i++)
				if (buf[i] != ' ' && buf[i] != '\t' && buf[i] != '\r' && buf[i] != '\n') {
					first = buf[i];
					break;
				}
			CHECK(first != ',' && first != ':' && first != '}' && first != ']', "value starts with '%c'", first);
		}
	}

	/* bl_yaml_next_marker from a line start: the first marker line at or after it, and the lines
	 * passed. */
	size_t start = pos;
	while (start > 0 && buf[start - 1] != '\n')
		start--;
	size_t line = 0;
	size_t m = bl_yaml_next_marker(buf, len, start, &line);
	size_t expect = len;
	for (size_t i = start; i < len; i++)
		if ((i == start || buf[i - 1] == '\n') && is_marker_line(buf, len, i)) {
			expect = i;
			break;
		}
	CHECK(m == expect, "marker at %zu, expected %zu (from %zu)", m, expect, start);
	if (m < len)
		CHECK(line == count_newlines(buf, start, m), "line %zu", line);

	/* bl_yaml_has_directive: some line starts with '%' (YAML breaks lines at LF and CR). */
	int directive = 0;
	for (size_t i = 0; i < len; i++)
		if (buf[i] == '%' && (i == 0 || buf[i - 1] == '\n' || buf[i - 1] == '\r')) {
			directive = 1;
			break;
		}
	CHECK(bl_yaml_has_directive(buf, len) == directive, "has_directive differs");
	free(buf);
	return 0;
}

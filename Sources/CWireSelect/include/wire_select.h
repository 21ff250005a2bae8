/* One pass over a JSON text from the API server that checks all of it as jansson does
 * (json_loadb with JSON_REJECT_DUPLICATES: the same texts are accepted and refused) and copies out
 * only the members a selection names. A watcher receives every Pod and Node of the cluster, mostly
 * bytes it never reads (managedFields, env, images, conditions); building a whole tree of them only
 * to throw it away was most of the cost of each event and list page. What is copied is parsed by
 * jansson afterwards, small, for the checks and the trimming that already exist
 * (Sources/KubeAPI/WireSelect.swift). */
#ifndef WIRE_SELECT_H
#define WIRE_SELECT_H

#include <stddef.h>
#include <stdint.h>

enum { WIRE_WHOLE = 0, WIRE_OBJECT = 1, WIRE_ARRAY = 2 };

/* A selection, flattened: node 0 is the root; a node's children are nodes[first ..< first+count].
 * An object node's children are its members, named by names[name_offset ..< +name_length]; an
 * array node has one child, how each element is selected. A value whose shape is not its node's
 * (an array where an object is selected) is copied whole, so that the checks after see it as it
 * was sent and say what is wrong with it. `measure`: the span of every value taken at this node
 * is recorded (the size of each object as sent, which a cap applies to). */
typedef struct wire_node {
	uint8_t shape;
	uint8_t measure;
	uint32_t first;
	uint32_t count;
	uint32_t name_offset;
	uint32_t name_length;
} wire_node;

typedef struct wire_span {
	size_t start;
	size_t end;
} wire_span;

/* Filled by wire_select; owned by the caller and released with wire_result_free (also after an
 * error). */
typedef struct wire_result {
	uint8_t *out;
	size_t out_length;
	size_t out_capacity;
	wire_span *spans;
	size_t span_count;
	size_t span_capacity;
	/* On error: what was wrong, where (1-based line and column, byte offset). */
	char error[200];
	size_t error_line;
	size_t error_column;
	size_t error_offset;
	/* Scratch for duplicate-key detection, kept between calls to avoid reallocation. */
	void *scratch;
} wire_result;

/* Returns 0 on success (out holds the selected JSON), -1 when the text is not JSON as jansson
 * reads it (error says why), -2 when memory ran out, -3 when the text holds a NUL byte: jansson's
 * buffer reader skips those (as if they were not there, in strings too), which no API server
 * sends; such a text is left to jansson itself. */
int wire_select(const uint8_t *in, size_t length, const wire_node *nodes, size_t node_count,
                const uint8_t *names, wire_result *result);

void wire_result_free(wire_result *result);

#endif

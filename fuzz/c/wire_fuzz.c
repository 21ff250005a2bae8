/* Differential target for Sources/CWireSelect: every input is read by jansson (json_loadb with
 * JSON_REJECT_DUPLICATES, as the watcher did) and by wire_select with a selection shaped like a
 * watch event's; both must accept or both refuse it, and when accepted, the selection reduced from
 * wire_select's output must equal the one reduced from jansson's whole tree (the property
 * Sources/KubeAPI/WireSelect.swift relies on). Any difference aborts. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire_select.h"

/* {"type", "object": {"kind", "metadata": {"name", "labels"}, "spec": {"ports": [{"port"}]}},
 *  "items": [ measured {"a"} ]} */
static const char NAMES[] = "typeobjectkindmetadatanamelabelsspecportsportitemsa";
static const wire_node NODES[] = {
	/* 0 root */ {WIRE_OBJECT, 0, 1, 3, 0, 0},
	/* 1 */ {WIRE_WHOLE, 0, 0, 0, 0, 4},         /* type */
	/* 2 */ {WIRE_OBJECT, 1, 4, 3, 4, 6},        /* object (measured) */
	/* 3 */ {WIRE_ARRAY, 0, 12, 1, 45, 5},       /* items */
	/* 4 */ {WIRE_WHOLE, 0, 0, 0, 10, 4},        /* kind */
	/* 5 */ {WIRE_OBJECT, 0, 7, 2, 14, 8},       /* metadata */
	/* 6 */ {WIRE_OBJECT, 0, 9, 1, 32, 4},       /* spec */
	/* 7 */ {WIRE_WHOLE, 0, 0, 0, 22, 4},        /* name */
	/* 8 */ {WIRE_WHOLE, 0, 0, 0, 26, 6},        /* labels */
	/* 9 */ {WIRE_ARRAY, 0, 10, 1, 36, 5},       /* ports */
	/* 10 */ {WIRE_OBJECT, 0, 11, 1, 0, 0},      /* a port */
	/* 11 */ {WIRE_WHOLE, 0, 0, 0, 41, 4},       /* port */
	/* 12 */ {WIRE_OBJECT, 1, 13, 1, 0, 0},      /* an item (measured) */
	/* 13 */ {WIRE_WHOLE, 0, 0, 0, 50, 1},       /* a */
};

static json_t *reduce(json_t *v, long node) {
	const wire_node *s = &NODES[node];
	if (s->shape == WIRE_WHOLE) return json_incref(v);
	if (s->shape == WIRE_OBJECT) {
		if (!json_is_object(v)) return NULL;
		json_t *out = json_object();
		for (uint32_t i = 0; i < s->count; i++) {
			const wire_node *c = &NODES[s->first + i];
			char name[16];
			memcpy(name, NAMES + c->name_offset, c->name_length);
			name[c->name_length] = 0;
			json_t *m = json_object_get(v, name);
			if (!m) continue;
			json_t *r = reduce(m, (long)(s->first + i));
			if (r) json_object_set_new(out, name, r);
		}
		return out;
	}
	if (!json_is_array(v)) return NULL;
	json_t *out = json_array();
	for (size_t i = 0; i < json_array_size(v); i++) {
		json_t *r = reduce(json_array_get(v, i), (long)s->first);
		if (r) json_array_append_new(out, r);
	}
	return out;
}

static wire_result result;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	json_error_t error;
	json_t *whole = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &error);
	int status = wire_select(data, size, NODES, sizeof NODES / sizeof *NODES, (const uint8_t *)NAMES, &result);
	if (status == -2) abort();
	if (status == -3) {
		if (!memchr(data, 0, size)) abort();
		json_decref(whole);
		return 0;
	}
	if ((whole != NULL) != (status == 0)) {
		fprintf(stderr, "verdicts differ: jansson %s (%s), wire_select %s (%s)\n", whole ? "accepts" : "refuses",
		        whole ? "" : error.text, status == 0 ? "accepts" : "refuses", result.error);
		abort();
	}
	if (!whole) return 0;
	json_t *selected = json_loadb((const char *)result.out, result.out_length, JSON_REJECT_DUPLICATES, &error);
	if (!selected) {
		fprintf(stderr, "the selection is not JSON: %s\n", error.text);
		abort();
	}
	json_t *a = reduce(whole, 0), *b = reduce(selected, 0);
	if ((a == NULL) != (b == NULL) || (a && !json_equal(a, b))) {
		fprintf(stderr, "selections differ\n");
		abort();
	}
	/* Every measured span is a value jansson reads alone (with JSON_DECODE_ANY). */
	for (size_t i = 0; i < result.span_count; i++) {
		wire_span sp = result.spans[i];
		json_t *v = json_loadb((const char *)data + sp.start, sp.end - sp.start, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &error);
		if (!v) {
			fprintf(stderr, "span %zu is not a value: %s\n", i, error.text);
			abort();
		}
		json_decref(v);
	}
	json_decref(a);
	json_decref(b);
	json_decref(selected);
	json_decref(whole);
	return 0;
}

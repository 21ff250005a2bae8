/* See wire_select.h. The grammar and its limits are jansson 2.14's (load.c, utf.c) with
 * JSON_REJECT_DUPLICATES and no other flag: an object or array at the top, nothing after it but
 * whitespace (space, tab, CR, LF), strings of valid UTF-8 without control characters or \u0000,
 * surrogate escapes only in pairs, integers within 64 bits, reals that do not overflow, at most
 * 2048 nested containers, no key twice in one object (compared decoded). The fuzz target
 * fuzz/c/wire_fuzz.c holds it to jansson, text for text. */
#include "wire_select.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 2048

/* A key of an object being read, decoded into the arena. */
typedef struct key_entry {
	uint64_t hash;
	uint32_t offset;
	uint32_t length;
} key_entry;

/* The keys of the objects open at the moment (a stack: an object's keys are dropped when it
 * closes), decoded, and the arena holding them. Kept between calls only through wire_result. */
typedef struct scratch {
	uint8_t *arena;
	size_t arena_length, arena_capacity;
	key_entry *keys;
	size_t key_count, key_capacity;
} scratch;

/* An object being read: where its keys start on the stack; past SMALL_OBJECT keys, an index
 * (open addressing, positions + 1) so that a huge object is not compared key by key. */
#define SMALL_OBJECT 24
typedef struct open_object {
	size_t key_base, arena_base;
	uint32_t *index;
	size_t index_capacity;
} open_object;

typedef struct parser {
	const uint8_t *in;
	size_t n, pos;
	const wire_node *nodes;
	size_t node_count;
	const uint8_t *names;
	wire_result *r;
	scratch *s;
	int depth;
	int oom;
} parser;

static int fail(parser *p, const char *message) {
	if (p->r->error[0] == 0) {
		snprintf(p->r->error, sizeof p->r->error, "%s", message);
		size_t line = 1, column = 0, end = p->pos < p->n ? p->pos : p->n;
		for (size_t i = 0; i < end; i++) {
			if (p->in[i] == '\n') {
				line++;
				column = 0;
			} else if ((p->in[i] & 0xC0) != 0x80) {
				column++;
			}
		}
		p->r->error_line = line;
		p->r->error_column = column + 1;
		p->r->error_offset = end;
	}
	return -1;
}

static int out_of_memory(parser *p) {
	p->oom = 1;
	return fail(p, "out of memory");
}

static int grow(parser *p, void **buffer, size_t *capacity, size_t needed, size_t element) {
	if (needed <= *capacity) return 0;
	size_t c = *capacity ? *capacity : 256;
	while (c < needed) c *= 2;
	void *b = realloc(*buffer, c * element);
	if (!b) return out_of_memory(p);
	*buffer = b;
	*capacity = c;
	return 0;
}

/* Appends bytes to a growing byte buffer (the output, the key arena). */
static int append(parser *p, uint8_t **buffer, size_t *length, size_t *capacity, const uint8_t *bytes, size_t n) {
	if (grow(p, (void **)buffer, capacity, *length + n, 1)) return -1;
	memcpy(*buffer + *length, bytes, n);
	*length += n;
	return 0;
}

static int emit(parser *p, const uint8_t *bytes, size_t length) {
	return append(p, &p->r->out, &p->r->out_length, &p->r->out_capacity, bytes, length);
}

static int emit_byte(parser *p, uint8_t b) { return emit(p, &b, 1); }

static void skip_ws(parser *p) {
	while (p->pos < p->n) {
		uint8_t c = p->in[p->pos];
		if (c != ' ' && c != '\t' && c != '\n' && c != '\r') return;
		p->pos++;
	}
}

/* ---- strings ----------------------------------------------------------------------------- */

static int arena_put(parser *p, const uint8_t *bytes, size_t length) {
	return append(p, &p->s->arena, &p->s->arena_length, &p->s->arena_capacity, bytes, length);
}

static int hex4(const uint8_t *h, uint32_t *value) {
	uint32_t v = 0;
	for (int i = 0; i < 4; i++) {
		uint8_t c = h[i];
		v <<= 4;
		if (c >= '0' && c <= '9') v |= (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f') v |= (uint32_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F') v |= (uint32_t)(c - 'A' + 10);
		else return -1;
	}
	*value = v;
	return 0;
}

static size_t utf8_encode(uint32_t v, uint8_t *o) {
	if (v < 0x80) { o[0] = (uint8_t)v; return 1; }
	if (v < 0x800) { o[0] = (uint8_t)(0xC0 | (v >> 6)); o[1] = (uint8_t)(0x80 | (v & 0x3F)); return 2; }
	if (v < 0x10000) {
		o[0] = (uint8_t)(0xE0 | (v >> 12)); o[1] = (uint8_t)(0x80 | ((v >> 6) & 0x3F)); o[2] = (uint8_t)(0x80 | (v & 0x3F));
		return 3;
	}
	o[0] = (uint8_t)(0xF0 | (v >> 18)); o[1] = (uint8_t)(0x80 | ((v >> 12) & 0x3F));
	o[2] = (uint8_t)(0x80 | ((v >> 6) & 0x3F)); o[3] = (uint8_t)(0x80 | (v & 0x3F));
	return 4;
}

/* The length of the valid UTF-8 sequence at `b` (jansson's utf8_check_first/_full), 0 if none. */
static size_t utf8_sequence(const uint8_t *b, size_t available) {
	uint8_t u = b[0];
	size_t size;
	uint32_t value;
	if (u < 0x80) return 1;
	if (u < 0xC2) return 0;
	if (u < 0xE0) { size = 2; value = u & 0x1F; }
	else if (u < 0xF0) { size = 3; value = u & 0x0F; }
	else if (u < 0xF5) { size = 4; value = u & 0x07; }
	else return 0;
	if (available < size) return 0;
	for (size_t i = 1; i < size; i++) {
		if (b[i] < 0x80 || b[i] > 0xBF) return 0;
		value = (value << 6) | (b[i] & 0x3F);
	}
	if (value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF)) return 0;
	if ((size == 3 && value < 0x800) || (size == 4 && value < 0x10000)) return 0;
	return size;
}

/* A string at p->pos (its opening quote), checked; when `decode`, its value is appended to the
 * arena. */
static int parse_string(parser *p, int decode) {
	const uint8_t *in = p->in;
	size_t n = p->n;
	p->pos++;
	for (;;) {
		size_t run = p->pos;
		while (p->pos < n) {
			uint8_t c = in[p->pos];
			if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\') break;
			p->pos++;
		}
		if (decode && p->pos > run && arena_put(p, in + run, p->pos - run)) return -1;
		if (p->pos >= n) return fail(p, "premature end of input in a string");
		uint8_t c = in[p->pos];
		if (c == '"') {
			p->pos++;
			return 0;
		}
		if (c < 0x20) return fail(p, "control character in a string");
		if (c >= 0x80) {
			size_t size = utf8_sequence(in + p->pos, n - p->pos);
			if (size == 0) return fail(p, "invalid UTF-8 in a string");
			if (decode && arena_put(p, in + p->pos, size)) return -1;
			p->pos += size;
			continue;
		}
		/* An escape. */
		if (p->pos + 1 >= n) return fail(p, "premature end of input in a string");
		uint8_t e = in[p->pos + 1];
		uint8_t plain;
		switch (e) {
		case '"': plain = '"'; break;
		case '\\': plain = '\\'; break;
		case '/': plain = '/'; break;
		case 'b': plain = '\b'; break;
		case 'f': plain = '\f'; break;
		case 'n': plain = '\n'; break;
		case 'r': plain = '\r'; break;
		case 't': plain = '\t'; break;
		case 'u': {
			uint32_t v;
			if (p->pos + 6 > n || hex4(in + p->pos + 2, &v)) return fail(p, "invalid \\u escape");
			p->pos += 6;
			if (v == 0) return fail(p, "\\u0000 is not allowed");
			if (v >= 0xD800 && v <= 0xDBFF) {
				uint32_t low;
				if (p->pos + 6 > n || in[p->pos] != '\\' || in[p->pos + 1] != 'u')
					return fail(p, "invalid Unicode: a lone high surrogate");
				if (hex4(in + p->pos + 2, &low)) return fail(p, "invalid \\u escape");
				if (low < 0xDC00 || low > 0xDFFF) return fail(p, "invalid Unicode: a high surrogate without its low one");
				p->pos += 6;
				v = 0x10000 + ((v - 0xD800) << 10) + (low - 0xDC00);
			} else if (v >= 0xDC00 && v <= 0xDFFF) {
				return fail(p, "invalid Unicode: a lone low surrogate");
			}
			if (decode) {
				uint8_t o[4];
				if (arena_put(p, o, utf8_encode(v, o))) return -1;
			}
			continue;
		}
		default:
			return fail(p, "invalid escape in a string");
		}
		if (decode && arena_put(p, &plain, 1)) return -1;
		p->pos += 2;
	}
}

/* ---- duplicate keys ---------------------------------------------------------------------- */

static uint64_t hash_bytes(const uint8_t *b, size_t n) {
	uint64_t h = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ULL;
	return h ^ (h >> 29);
}

static int same_key(const scratch *s, const key_entry *a, const key_entry *b) {
	return a->hash == b->hash && a->length == b->length && memcmp(s->arena + a->offset, s->arena + b->offset, a->length) == 0;
}

/* Indexes the object's keys [key_base, key_count) in a table of `capacity` slots. */
static int index_keys(parser *p, open_object *o, size_t capacity) {
	scratch *s = p->s;
	uint32_t *index = calloc(capacity, sizeof *index);
	if (!index) return out_of_memory(p);
	for (size_t i = o->key_base; i < s->key_count; i++) {
		size_t j = s->keys[i].hash & (capacity - 1);
		while (index[j]) j = (j + 1) & (capacity - 1);
		index[j] = (uint32_t)(i - o->key_base + 1);
	}
	free(o->index);
	o->index = index;
	o->index_capacity = capacity;
	return 0;
}

/* Adds the key just decoded at arena[offset ..< arena_length] to the object; -1 (with the error
 * set) when the object has it already. */
static int note_key(parser *p, open_object *o, size_t offset) {
	scratch *s = p->s;
	key_entry k = {.hash = hash_bytes(s->arena + offset, s->arena_length - offset),
	               .offset = (uint32_t)offset, .length = (uint32_t)(s->arena_length - offset)};
	if (o->index) {
		size_t mask = o->index_capacity - 1;
		for (size_t j = k.hash & mask; o->index[j]; j = (j + 1) & mask)
			if (same_key(s, &s->keys[o->key_base + o->index[j] - 1], &k)) return fail(p, "duplicate object key");
	} else {
		for (size_t i = o->key_base; i < s->key_count; i++)
			if (same_key(s, &s->keys[i], &k)) return fail(p, "duplicate object key");
	}
	if (grow(p, (void **)&s->keys, &s->key_capacity, s->key_count + 1, sizeof *s->keys)) return -1;
	s->keys[s->key_count++] = k;
	size_t count = s->key_count - o->key_base;
	if (count > SMALL_OBJECT && count * 2 > o->index_capacity) return index_keys(p, o, o->index_capacity ? o->index_capacity * 2 : 128);
	if (o->index) {
		size_t mask = o->index_capacity - 1, j = k.hash & mask;
		while (o->index[j]) j = (j + 1) & mask;
		o->index[j] = (uint32_t)count;
	}
	return 0;
}

/* ---- values ------------------------------------------------------------------------------ */

static int is_digit(uint8_t c) { return c >= '0' && c <= '9'; }

static int parse_number(parser *p) {
	const uint8_t *in = p->in;
	size_t start = p->pos, n = p->n;
	int negative = 0, real = 0;
	if (in[p->pos] == '-') { negative = 1; p->pos++; }
	if (p->pos >= n) return fail(p, "invalid token");
	if (in[p->pos] == '0') {
		p->pos++;
		if (p->pos < n && is_digit(in[p->pos])) return fail(p, "invalid token: a number with a leading zero");
	} else if (is_digit(in[p->pos])) {
		while (p->pos < n && is_digit(in[p->pos])) p->pos++;
	} else {
		return fail(p, "invalid token");
	}
	size_t integer_end = p->pos;
	if (p->pos < n && in[p->pos] == '.') {
		real = 1;
		p->pos++;
		if (p->pos >= n || !is_digit(in[p->pos])) return fail(p, "invalid token: no digit after the decimal point");
		while (p->pos < n && is_digit(in[p->pos])) p->pos++;
	}
	if (p->pos < n && (in[p->pos] == 'e' || in[p->pos] == 'E')) {
		real = 1;
		p->pos++;
		if (p->pos < n && (in[p->pos] == '+' || in[p->pos] == '-')) p->pos++;
		if (p->pos >= n || !is_digit(in[p->pos])) return fail(p, "invalid token: no digit in the exponent");
		while (p->pos < n && is_digit(in[p->pos])) p->pos++;
	}
	if (!real) {
		/* Within json_int_t (long long), as strtoll decides. */
		uint64_t v = 0, limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
		for (size_t i = start + (size_t)negative; i < integer_end; i++) {
			uint64_t d = (uint64_t)(in[i] - '0');
			if (v > (limit - d) / 10) return fail(p, negative ? "too big negative integer" : "too big integer");
			v = v * 10 + d;
		}
		return 0;
	}
	char buffer[128];
	size_t length = p->pos - start;
	char *text = length < sizeof buffer ? buffer : malloc(length + 1);
	if (!text) return out_of_memory(p);
	memcpy(text, in + start, length);
	text[length] = 0;
	errno = 0;
	double d = strtod(text, NULL);
	int overflow = errno == ERANGE && (d > 1.0 || d < -1.0);
	if (text != buffer) free(text);
	return overflow ? fail(p, "real number overflow") : 0;
}

static int parse_literal(parser *p, const char *word, size_t length) {
	if (p->n - p->pos < length || memcmp(p->in + p->pos, word, length) != 0) return fail(p, "invalid token");
	p->pos += length;
	return 0;
}

static int parse_value(parser *p, long node);

static int enter(parser *p) {
	if (++p->depth > MAX_DEPTH) return fail(p, "maximum parsing depth reached");
	return 0;
}

/* The members of an object after its '{'. */
static int parse_members(parser *p, long node, open_object *o) {
	const wire_node *sel = node >= 0 ? &p->nodes[node] : NULL;
	int first = 1;
	p->pos++;
	if (sel && emit_byte(p, '{')) return -1;
	skip_ws(p);
	if (p->pos < p->n && p->in[p->pos] == '}') {
		p->pos++;
		return sel ? emit_byte(p, '}') : 0;
	}
	for (;;) {
		skip_ws(p);
		if (p->pos >= p->n || p->in[p->pos] != '"') return fail(p, "string expected as an object key");
		size_t key_start = p->pos, offset = p->s->arena_length;
		if (parse_string(p, 1)) return -1;
		size_t key_end = p->pos;
		if (note_key(p, o, offset)) return -1;
		long child = -1;
		if (sel) {
			size_t length = p->s->arena_length - offset;
			for (uint32_t i = 0; i < sel->count; i++) {
				const wire_node *c = &p->nodes[sel->first + i];
				if (c->name_length == length && memcmp(p->names + c->name_offset, p->s->arena + offset, length) == 0) {
					child = (long)(sel->first + i);
					break;
				}
			}
		}
		skip_ws(p);
		if (p->pos >= p->n || p->in[p->pos] != ':') return fail(p, "':' expected");
		p->pos++;
		if (child >= 0) {
			if (!first && emit_byte(p, ',')) return -1;
			if (emit(p, p->in + key_start, key_end - key_start) || emit_byte(p, ':')) return -1;
			first = 0;
		}
		if (parse_value(p, child)) return -1;
		skip_ws(p);
		if (p->pos >= p->n) return fail(p, "premature end of input in an object");
		uint8_t c = p->in[p->pos++];
		if (c == '}') break;
		if (c != ',') return fail(p, "'}' or ',' expected");
	}
	return sel ? emit_byte(p, '}') : 0;
}

/* An object; `node` < 0: checked only; else an object node: its members copied, selected. */
static int parse_object(parser *p, long node) {
	if (enter(p)) return -1;
	open_object o = {.key_base = p->s->key_count, .arena_base = p->s->arena_length};
	int status = parse_members(p, node, &o);
	free(o.index);
	p->s->key_count = o.key_base;
	p->s->arena_length = o.arena_base;
	p->depth--;
	return status;
}

/* An array; `node` < 0: checked only; else an array node: its elements copied, selected. */
static int parse_array(parser *p, long node) {
	if (enter(p)) return -1;
	const wire_node *sel = node >= 0 ? &p->nodes[node] : NULL;
	long element = sel && sel->count > 0 ? (long)sel->first : -1;
	int first = 1;
	p->pos++;
	if (sel && emit_byte(p, '[')) return -1;
	skip_ws(p);
	if (p->pos < p->n && p->in[p->pos] == ']') {
		p->pos++;
		p->depth--;
		return sel ? emit_byte(p, ']') : 0;
	}
	for (;;) {
		if (sel) {
			if (!first && emit_byte(p, ',')) return -1;
			first = 0;
		}
		if (parse_value(p, sel ? element : -1)) return -1;
		skip_ws(p);
		if (p->pos >= p->n) return fail(p, "premature end of input in an array");
		uint8_t c = p->in[p->pos++];
		if (c == ']') break;
		if (c != ',') return fail(p, "']' or ',' expected");
	}
	p->depth--;
	return sel ? emit_byte(p, ']') : 0;
}

/* A value at p->pos (after whitespace); `node` < 0: checked only, else taken as its node says. */
static int parse_value(parser *p, long node) {
	skip_ws(p);
	if (p->pos >= p->n) return fail(p, "premature end of input");
	size_t start = p->pos;
	const wire_node *sel = node >= 0 ? &p->nodes[node] : NULL;
	uint8_t c = p->in[p->pos];
	int selecting = 0, status;
	switch (c) {
	case '{':
		selecting = sel && sel->shape == WIRE_OBJECT;
		status = parse_object(p, selecting ? node : -1);
		break;
	case '[':
		selecting = sel && sel->shape == WIRE_ARRAY;
		status = parse_array(p, selecting ? node : -1);
		break;
	case '"': status = parse_string(p, 0); break;
	case 't': status = parse_literal(p, "true", 4); break;
	case 'f': status = parse_literal(p, "false", 5); break;
	case 'n': status = parse_literal(p, "null", 4); break;
	default:
		status = c == '-' || is_digit(c) ? parse_number(p) : fail(p, "invalid token");
		break;
	}
	if (status) return -1;
	if (sel && !selecting && emit(p, p->in + start, p->pos - start)) return -1;
	if (sel && sel->measure) {
		wire_result *r = p->r;
		if (grow(p, (void **)&r->spans, &r->span_capacity, r->span_count + 1, sizeof *r->spans)) return -1;
		r->spans[r->span_count++] = (wire_span){.start = start, .end = p->pos};
	}
	return 0;
}

int wire_select(const uint8_t *in, size_t length, const wire_node *nodes, size_t node_count,
                const uint8_t *names, wire_result *result) {
	result->out_length = 0;
	result->span_count = 0;
	result->error[0] = 0;
	result->error_line = result->error_column = result->error_offset = 0;
	if (!result->scratch) {
		result->scratch = calloc(1, sizeof(scratch));
		if (!result->scratch) return -2;
	}
	if (memchr(in, 0, length)) {
		snprintf(result->error, sizeof result->error, "a NUL byte");
		return -3;
	}
	scratch *s = result->scratch;
	s->arena_length = 0;
	s->key_count = 0;
	parser p = {.in = in, .n = length, .pos = 0, .nodes = nodes, .node_count = node_count, .names = names,
	            .r = result, .s = s, .depth = 0, .oom = 0};
	if (node_count == 0) return fail(&p, "an empty selection"), -1;
	skip_ws(&p);
	if (p.pos >= length || (in[p.pos] != '{' && in[p.pos] != '[')) return fail(&p, "'[' or '{' expected"), -1;
	if (parse_value(&p, 0)) return p.oom ? -2 : -1;
	skip_ws(&p);
	if (p.pos != length) return fail(&p, "end of file expected"), -1;
	return 0;
}

void wire_result_free(wire_result *result) {
	free(result->out);
	free(result->spans);
	scratch *s = result->scratch;
	if (s) {
		free(s->arena);
		free(s->keys);
		free(s);
	}
	memset(result, 0, sizeof *result);
}

#include <jansson.h>

/* jansson's json_typeof/json_is_* are macros over the struct; these give Swift plain functions. */
static inline int cjansson_type(const json_t *j) { return j ? (int)json_typeof(j) : -1; }
static inline void cjansson_decref(json_t *j) { json_decref(j); }

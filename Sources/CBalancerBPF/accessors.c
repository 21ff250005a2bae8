#include "balancer_bpf.h"

extern const unsigned char bl_bpf_object[];
extern const size_t bl_bpf_object_size;

const void *bl_bpf_object_bytes(void) { return bl_bpf_object; }
size_t bl_bpf_object_length(void) { return bl_bpf_object_size; }

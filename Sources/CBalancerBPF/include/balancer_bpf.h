/* The datapath object (bpf/programs/balancer.bpf.c, compiled with BTF, DWARF stripped), embedded
 * in the balancer binary so one file ships. Its bytes are generated at build time, by the plugin
 * Plugins/BPFObject (bpf/programs/build.sh -e), from the sources being built. */
#ifndef BALANCER_BPF_H
#define BALANCER_BPF_H

#include <stddef.h>

/* The object's bytes and length (Swift cannot import an unsized array). */
const void *bl_bpf_object_bytes(void);
size_t bl_bpf_object_length(void);

#endif

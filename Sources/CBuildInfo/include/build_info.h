/* What balancer was built from, generated at build time by the plugin Plugins/BuildInfo. */
#ifndef BALANCER_BUILD_INFO_H
#define BALANCER_BUILD_INFO_H

/* The git commit of the checkout built (`-dirty` when tracked files differed from it), or
 * `unknown` when it was not a git checkout. */
const char *bl_build_commit(void);

#endif

#include "build_info.h"

extern const char bl_build_commit_text[];

const char *bl_build_commit(void) { return bl_build_commit_text; }

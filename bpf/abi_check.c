/* Compiles the ABI header on the host so its _Static_asserts run in every build, and gives the
 * CBalancerABI target the one C file SwiftPM requires. */
#include "balancer_abi.h"

unsigned bl_abi_version(void) { return BL_ABI_VERSION; }

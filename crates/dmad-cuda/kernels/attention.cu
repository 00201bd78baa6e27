// Blocked attention: see src/attention.rs.
#include "common.cuh"

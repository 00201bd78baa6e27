// Host stand-in for <math_constants.h> (emulation only).
#pragma once
#include <cmath>
#define CUDART_INF_F INFINITY

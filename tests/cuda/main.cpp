// doctest's main() for the CUDA-kernel test programs (on the GPU and on the SIMT simulator).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

"""Abridged /proc/cpuinfo texts of real processors, for tests of the hardware-dependent choices."""

# Only the lines the parser reads.
EPYC_GENOA = "processor\t: 0\nmodel name\t: AMD EPYC 9R14\nflags\t\t: fpu avx2 avx512f avx512_bf16 avx512_vnni\n"
SAPPHIRE_RAPIDS = "model name\t: Intel Xeon 8480+\nflags\t: avx2 avx512f avx512_vnni avx512_bf16 amx_bf16 amx_int8\n"
CASCADE_LAKE = "model name\t: Intel Xeon 8275CL\nflags\t: avx2 avx512f avx512_vnni\n"
ALDER_LAKE = "model name\t: 12th Gen Intel Core i7\nflags\t: avx2 avx_vnni\n"
SKYLAKE = "model name\t: Intel Xeon 8175M\nflags\t: avx2 avx512f\n"
GRAVITON3 = "processor\t: 0\nFeatures\t: fp asimd bf16 i8mm asimddp\n"

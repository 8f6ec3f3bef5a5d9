// llama.cpp's tinyBLAS (ggml-cpu/llamafile/sgemm.cpp) compiled a second time, with AVX-512 and VNNI, under another
// name; patch 0012 makes ggml's matmul call it on CPUs that have those features. native/CMakeLists.txt adds this file
// to the ggml-cpu target with the extra -m flags. Everything in sgemm.cpp but its entry point has internal linkage
// (an anonymous namespace), so nothing compiled for AVX-512 here can stand in for the portable code elsewhere.
#define llamafile_sgemm steer_llamafile_sgemm_avx512
#include "llamafile/sgemm.cpp"

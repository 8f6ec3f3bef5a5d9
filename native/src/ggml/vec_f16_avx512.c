// Flash attention's F16 loops (patch 0022) in 512-bit vectors, for a portable (AVX2) build that runs on a CPU with
// AVX-512. A decoded token's attention runs, per query head and cached token, one F16 dot product of the key with the
// query and one F16 multiply-add of the value into the head's accumulator, 64 elements wide on SmolLM2 (256 on
// Gemma 3): on the AMD EPYC measured, 12% of Steer's one-stream decode samples against 7% of llama-server's, which
// its users build native (AVX-512: 16 lanes, one pass over 64 elements where 8 lanes take two). This file is vec.h's
// own code compiled with the AVX-512 flags (native/CMakeLists.txt): ggml_vec_mad_f16 and ggml_vec_scale_f16 are
// vec.h's inline functions, and the dot product is ggml_vec_dot_f16's SIMD branch (ggml-cpu/vec.cpp) as written
// there, so these compute what a native build on such a CPU computes. Patch 0022 has ggml_cpu_init point flash
// attention at them where the CPU has AVX-512F.
#include "vec.h"

// (patch 0022 declares the pointers these are assigned to, in ops.h)
void steer_avx512_vec_dot_f16(int n, float * GGML_RESTRICT s, size_t bs, ggml_fp16_t * GGML_RESTRICT x, size_t bx,
                              ggml_fp16_t * GGML_RESTRICT y, size_t by, int nrc);
void steer_avx512_vec_mad_f16(int n, ggml_fp16_t * GGML_RESTRICT y, const ggml_fp16_t * GGML_RESTRICT x, float v);
void steer_avx512_vec_scale_f16(int n, ggml_fp16_t * y, float v);

void steer_avx512_vec_dot_f16(int n, float * GGML_RESTRICT s, size_t bs, ggml_fp16_t * GGML_RESTRICT x, size_t bx,
                              ggml_fp16_t * GGML_RESTRICT y, size_t by, int nrc) {
    GGML_UNUSED(bs);
    GGML_UNUSED(bx);
    GGML_UNUSED(by);
    GGML_UNUSED(nrc);
    ggml_float sumf = 0.0;
    const int np = (n & ~(GGML_F16_STEP - 1));
    GGML_F16_VEC sum[GGML_F16_ARR] = { GGML_F16_VEC_ZERO };
    GGML_F16_VEC ax[GGML_F16_ARR];
    GGML_F16_VEC ay[GGML_F16_ARR];
    for (int i = 0; i < np; i += GGML_F16_STEP) {
        for (int j = 0; j < GGML_F16_ARR; j++) {
            ax[j] = GGML_F16_VEC_LOAD(x + i + j*GGML_F16_EPR, j);
            ay[j] = GGML_F16_VEC_LOAD(y + i + j*GGML_F16_EPR, j);
            sum[j] = GGML_F16_VEC_FMA(sum[j], ax[j], ay[j]);
        }
    }
    GGML_F16_VEC_REDUCE(sumf, sum);
    for (int i = np; i < n; ++i) {
        sumf += (ggml_float)(GGML_CPU_FP16_TO_FP32(x[i])*GGML_CPU_FP16_TO_FP32(y[i]));
    }
    *s = sumf;
}

void steer_avx512_vec_mad_f16(int n, ggml_fp16_t * GGML_RESTRICT y, const ggml_fp16_t * GGML_RESTRICT x, float v) {
    ggml_vec_mad_f16(n, y, x, v);
}

void steer_avx512_vec_scale_f16(int n, ggml_fp16_t * y, float v) {
    ggml_vec_scale_f16(n, y, v);
}

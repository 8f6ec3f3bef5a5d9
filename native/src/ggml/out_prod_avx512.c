// 0003's block of dst rows of a quantized OUT_PROD (the trainer's backward through a frozen weight: dequantized
// weight rows times the gradient, added into the rows of the input's gradient) in 512-bit vectors, for a portable
// (AVX2) build that runs on a CPU with AVX-512, eight dst rows at a time where 0003 takes four. The kernel streams
// the thread's 32 dequantized weight rows (ne0 floats each, 72 KiB at n_embd 576: beyond L1) once per group of dst
// rows, for one multiply-add per float per row: eight rows halve those reads, and 512-bit vectors (with 32 registers
// for the sixteen accumulators) halve the instructions. Patch 0018 declares it (ggml-cpu/ops.h) and has ggml_cpu_init
// choose it where the CPU has AVX-512F; native/CMakeLists.txt compiles this file with the AVX-512 flags. Per element
// the sum is the loop's it replaces (ggml-cpu/ops.cpp): the value dst held, plus one fused multiply-add per weight
// row in ascending order: the same numbers to the last bit.
#include <immintrin.h>
#include <stdint.h>

void steer_avx512_out_prod_rows8(int64_t ne0, int64_t nb, const float * w, const float * c, int64_t cstride, float * const * d) {
    for (int64_t i0 = 0; i0 < ne0; i0 += 32) {  // ne0 a multiple of 32 (ggml-cpu/ops.cpp asks): whole vector pairs
        __m512 a[8][2];
        for (int j = 0; j < 8; ++j) {
            a[j][0] = _mm512_loadu_ps(d[j] + i0);
            a[j][1] = _mm512_loadu_ps(d[j] + i0 + 16);
        }
        for (int64_t k = 0; k < nb; ++k) {
            const float * wk = w + k * ne0 + i0;
            const __m512 w0 = _mm512_loadu_ps(wk), w1 = _mm512_loadu_ps(wk + 16);
            for (int j = 0; j < 8; ++j) {  // unrolled by the compiler: the accumulators stay in registers
                const __m512 v = _mm512_set1_ps(c[j * cstride + k]);
                a[j][0] = _mm512_fmadd_ps(w0, v, a[j][0]);
                a[j][1] = _mm512_fmadd_ps(w1, v, a[j][1]);
            }
        }
        for (int j = 0; j < 8; ++j) {
            _mm512_storeu_ps(d[j] + i0, a[j][0]);
            _mm512_storeu_ps(d[j] + i0 + 16, a[j][1]);
        }
    }
}

// Our CPU kernel patches (native/patches/0003, 0007, 0009, 0010, 0011, 0012, 0013, 0015, 0017, 0018, 0019, 0022) against plain double-precision loops, element by element, on
// ggml's CPU backend, and the allocator's in-place cross-entropy backward (0020), and float rows four at a time (0021)
// against ggml_vec_dot_f32 bit for bit: no JVM, no model. Built and run by Maven's test phase (native/pom.xml); a failed check prints
// where and exits non-zero.
#include "ggml.h"
#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "ggml-cpu.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>
#if defined(STEER_OUT_PROD_AMX)  // Linux only (native/CMakeLists.txt)
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

// ggml-cpu's row dequantizer (patch 0010; internal to ggml-cpu, declared in its vec.h)
extern "C" ggml_to_float_t ggml_cpu_to_float(enum ggml_type type);
// ggml-cpu's float dot product (vec.h), what 0021's rows must equal
extern "C" void ggml_vec_dot_f32(int n, float * s, size_t bs, const float * x, size_t bx, const float * y, size_t by, int nrc);

static int failures = 0;

#define CHECK(cond, ...)                                                          \
    do {                                                                          \
        if (!(cond)) {                                                            \
            std::fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
            std::fprintf(stderr, __VA_ARGS__);                                    \
            std::fprintf(stderr, "\n");                                           \
            failures++;                                                           \
        }                                                                         \
    } while (0)

static ggml_context * new_context() {
    ggml_init_params p = { (size_t) 256 << 20, nullptr, false };
    return ggml_init(p);
}

static void compute(ggml_context * ctx, ggml_tensor * out, int threads) {
    ggml_cgraph * gf = ggml_new_graph(ctx);
    ggml_build_forward_expand(gf, out);
    ggml_graph_compute_with_ctx(ctx, gf, threads);
}

static std::vector<float> values(std::mt19937 & rng, size_t n, float scale) {
    std::normal_distribution<float> d(0.0f, scale);
    std::vector<float> v(n);
    for (float & x : v) {
        x = d(rng);
    }
    return v;
}

static ggml_tensor * tensor_2d(ggml_context * ctx, const std::vector<float> & v, int64_t ne0, int64_t ne1) {
    ggml_tensor * t = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, ne0, ne1);
    std::copy(v.begin(), v.end(), (float *) t->data);
    return t;
}

// 0009: GELU (tanh form) and GEGLU, eight or sixteen lanes at a time, against 0.5 x (1 + tanh(u)) in double.
static void gelu_is_the_tanh_formula() {
    const int n = 1003;  // not a multiple of 8 or 16: the scalar lanes at the end too
    std::vector<float> x(n), g(n);
    for (int i = 0; i < n; i++) {
        x[i] = -12.0f + 24.0f * i / (n - 1);  // both tails and the bend
        g[i] = 0.5f + 0.001f * i;
    }
    ggml_context * ctx = new_context();
    ggml_tensor * tx = tensor_2d(ctx, x, n, 1);
    ggml_tensor * tg = tensor_2d(ctx, g, n, 1);
    ggml_tensor * y = ggml_gelu(ctx, tx);
    ggml_tensor * yg = ggml_geglu_split(ctx, tx, tg);
    compute(ctx, y, 2);
    compute(ctx, yg, 2);
    for (int i = 0; i < n; i++) {
        const double xi = x[i];
        const double want = 0.5 * xi * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (xi + 0.044715 * xi * xi * xi)));
        const double got = ((float *) y->data)[i];
        const double got_g = ((float *) yg->data)[i];
        // float rounding of the result, and of 1 + tanh(u) where the scalar lanes still cancel (x below about -3)
        const double tol = 4e-7 * std::fabs(want) + 2e-7;
        CHECK(std::fabs(got - want) <= tol, "gelu(%g) = %.9g, want %.9g", xi, got, want);
        CHECK(std::fabs(got_g - want * g[i]) <= tol, "geglu(%g) = %.9g, want %.9g", xi, got_g, want * g[i]);
    }
    ggml_free(ctx);
}

// 0007: OUT_PROD into rows 4, 8, 16, 32 floats wide (and 5, the general loop), dst[i0, i1] = sum_k a[i0, k] b[i1, k].
static void narrow_out_prod_is_the_sum() {
    std::mt19937 rng(7);
    for (int ne0 : {4, 5, 8, 16, 32}) {
        const int K = 67, N = 45;  // N rows of the result: blocks of 8, 4 or 2, and a partial one
        std::vector<float> a = values(rng, (size_t) ne0 * K, 1.0f), b = values(rng, (size_t) N * K, 1.0f);
        ggml_context * ctx = new_context();
        ggml_tensor * ta = tensor_2d(ctx, a, ne0, K);           // [ne0, K]
        ggml_tensor * tb = tensor_2d(ctx, b, N, K);             // [N, K]: the layout of dB = OUT_PROD(Ax, dy)
        ggml_tensor * out = ggml_out_prod(ctx, ta, tb);         // [ne0, N]
        ggml_tensor * tbt = tensor_2d(ctx, b, K, N);            // [K, N] transposed: the layout of d(Ax) = OUT_PROD(B, dy^T)
        ggml_tensor * out_t = ggml_out_prod(ctx, ta, ggml_transpose(ctx, tbt));
        compute(ctx, out, 2);
        compute(ctx, out_t, 3);
        for (int i1 = 0; i1 < N; i1++) {
            for (int i0 = 0; i0 < ne0; i0++) {
                double want = 0, want_t = 0, size = 0;
                for (int k = 0; k < K; k++) {
                    want += (double) a[k * ne0 + i0] * b[k * N + i1];
                    want_t += (double) a[k * ne0 + i0] * b[i1 * K + k];
                    size += std::fabs((double) a[k * ne0 + i0] * b[k * N + i1]);
                }
                const double got = ((float *) out->data)[i1 * ne0 + i0];
                const double got_t = ((float *) out_t->data)[i1 * ne0 + i0];
                CHECK(std::fabs(got - want) <= 1e-6 * size, "ne0 %d, [%d, %d] = %.9g, want %.9g", ne0, i0, i1, got, want);
                CHECK(std::fabs(got_t - want_t) <= 1e-6 * size, "ne0 %d transposed, [%d, %d] = %.9g, want %.9g", ne0, i0, i1, got_t, want_t);
            }
        }
        ggml_free(ctx);
    }
}

// 0015: F32 OUT_PROD, dst[i0, i1, i2, i3] = sum over j of a[i0, j, i2 / (ne2/ne02), i3 / (ne3/ne03)] b[i1, j, i2, i3],
// each element one chain of FMAs over j in order from 0, as ggml's general loop adds them (where the compiler fuses
// a*b + c); so it must equal that chain in float (std::fma) to the last bit. Widths at least one of the build's
// vectors (8 floats with AVX2; narrower rows are 0007's kernel, which does not fuse its multiply-adds, checked above
// with a tolerance): 8 and 12 (a rank: one-vector blocks, then single columns), 20 and 37 (two-vector blocks, then
// one vector, then single columns), 72; sums of 3 (a rank) and 67 terms; b as stored and transposed (the layouts of
// dA and of the adapter input's gradient); 13 result rows in 6 x 2 matrices over 2 x 1 of a (grouped-query
// broadcast, both dimensions), and 5 rows in one matrix (fewer blocks than threads); 1 to 3 threads.
static void f32_out_prod_is_the_fma_chain() {
    if (!ggml_cpu_has_fma() && !ggml_cpu_has_neon()) {  // NEON's vector multiply-add is fused
        std::printf("ggml_kernels_test: ggml-cpu built without FMA; 0015's bit-exact check not run\n");
        return;
    }
    const int vector = ggml_cpu_has_avx512() ? 16 : ggml_cpu_has_avx() ? 8 : 4;  // GGML_F32_EPR of the build
    struct shape {
        int N, ne2, ne02, ne3, ne03;
    };
    std::mt19937 rng(15);
    for (const shape & sh : {shape{13, 6, 2, 2, 1}, shape{5, 1, 1, 1, 1}}) {
        for (int ne0 : {8, 12, 20, 37, 72}) {
            if (ne0 < vector) {
                continue;
            }
            for (int K : {3, 67}) {
                const int N = sh.N, ne2 = sh.ne2, ne3 = sh.ne3;
                const size_t matrices = (size_t) ne2 * ne3;
                std::vector<float> a = values(rng, (size_t) ne0 * K * sh.ne02 * sh.ne03, 1.0f), b = values(rng, (size_t) N * K * matrices, 1.0f);
                ggml_context * ctx = new_context();
                ggml_tensor * ta = ggml_new_tensor_4d(ctx, GGML_TYPE_F32, ne0, K, sh.ne02, sh.ne03);
                std::memcpy(ta->data, a.data(), a.size() * sizeof(float));
                ggml_tensor * tb = ggml_new_tensor_4d(ctx, GGML_TYPE_F32, N, K, ne2, ne3);   // b[i1, j, m] at i1 + N (j + K m)
                std::memcpy(tb->data, b.data(), b.size() * sizeof(float));
                ggml_tensor * tbt = ggml_new_tensor_4d(ctx, GGML_TYPE_F32, K, N, ne2, ne3);  // the same values, j fastest
                for (size_t m = 0; m < matrices; m++) {
                    for (int j = 0; j < K; j++) {
                        for (int i1 = 0; i1 < N; i1++) {
                            ((float *) tbt->data)[(m * N + i1) * K + j] = b[(m * K + j) * N + i1];
                        }
                    }
                }
                ggml_tensor * outs[2] = { ggml_out_prod(ctx, ta, tb), ggml_out_prod(ctx, ta, ggml_transpose(ctx, tbt)) };
                for (int threads : {1, 2, 3}) {
                    for (int layout = 0; layout < 2; layout++) {
                        ggml_tensor * out = outs[layout];
                        std::fill((float *) out->data, (float *) out->data + (size_t) ne0 * N * matrices, NAN);  // a compute that wrote nothing fails
                        compute(ctx, out, threads);
                        for (int i3 = 0; i3 < ne3; i3++) {
                            for (int i2 = 0; i2 < ne2; i2++) {
                                const size_t m = (size_t) i3 * ne2 + i2;
                                const size_t ma = (size_t) (i3 / (ne3 / sh.ne03)) * sh.ne02 + i2 / (ne2 / sh.ne02);
                                for (int i1 = 0; i1 < N; i1++) {
                                    for (int i0 = 0; i0 < ne0; i0++) {
                                        float chain = 0;
                                        for (int j = 0; j < K; j++) {
                                            chain = std::fma(a[(ma * K + j) * ne0 + i0], b[(m * K + j) * N + i1], chain);
                                        }
                                        const float got = ((float *) out->data)[(m * N + i1) * ne0 + i0];
                                        CHECK(std::memcmp(&got, &chain, sizeof(float)) == 0,
                                              "width %d, sum of %d, %d rows, %s, %d threads, [%d, %d, %d, %d]: %.9g, the chain %.9g",
                                              ne0, K, N, layout ? "b transposed" : "b as stored", threads, i0, i1, i2, i3, got, chain);
                                    }
                                }
                            }
                        }
                    }
                }
                ggml_free(ctx);
            }
        }
    }
}

// 0010: the AVX2 row dequantizers give ggml-base's values to the last bit.
static void dequantized_rows_are_ggml_bases() {
    std::mt19937 rng(10);
    for (ggml_type type : {GGML_TYPE_Q4_1, GGML_TYPE_Q8_0, GGML_TYPE_Q4_K}) {
        const int K = 1024;
        std::vector<float> w = values(rng, K, 0.3f), base(K), cpu(K);
        std::vector<char> q(ggml_row_size(type, K));
        ggml_quantize_chunk(type, w.data(), q.data(), 0, 1, K, nullptr);
        ggml_get_type_traits(type)->to_float(q.data(), base.data(), K);
        ggml_cpu_to_float(type)(q.data(), cpu.data(), K);
        for (int i = 0; i < K; i++) {
            CHECK(std::memcmp(&base[i], &cpu[i], sizeof(float)) == 0, "%s [%d] = %.9g, ggml-base %.9g", ggml_type_name(type), i, cpu[i], base[i]);
        }
    }
}

// 0011, 0017: a Q4_1 matmul over several tokens (two rows x four tokens or two rows x two tokens per kernel call)
// gives each token, bit for bit, what the same matmul gives it alone (one row x one token per call), and both are the
// dot products of the dequantized weights with the Q8_1-rounded activations.
static void q4_1_matmul_is_batch_invariant() {
    std::mt19937 rng(11);
    // 64 x 8: every row pair by four tokens; 38 x 7 and 37 x 9: odd chunks and token counts, whose last row takes the
    // one-by-one kernel, and whose tokens go four, then two, then one; 40 x 22: a 16-token tile and a partial one;
    // 38 x (5 x 2) and 38 x (3 x 3): two and three matrices, each with a weight of its own, whose tokens follow each
    // other in the loop: a call that took tokens of two matrices would multiply some by the other matrix's weight
    struct shape {
        int R, N, M;  // weight rows, tokens per matrix, matrices
    };
    for (shape sh : {shape{64, 8, 1}, shape{38, 7, 1}, shape{37, 9, 1}, shape{40, 22, 1}, shape{38, 5, 2}, shape{38, 3, 3}})
    for (int threads : {1, 2}) {
        const int K = 512, R = sh.R, N = sh.N * sh.M;
        const size_t wrow = ggml_row_size(GGML_TYPE_Q4_1, K);
        std::vector<float> w = values(rng, (size_t) R * sh.M * K, 0.3f), x = values(rng, (size_t) N * K, 1.0f);
        ggml_context * ctx = new_context();
        ggml_tensor * wq = ggml_new_tensor_3d(ctx, GGML_TYPE_Q4_1, K, R, sh.M);
        ggml_quantize_chunk(GGML_TYPE_Q4_1, w.data(), wq->data, 0, (int64_t) R * sh.M, K, nullptr);
        ggml_tensor * all = ggml_mul_mat(ctx, wq, ggml_reshape_3d(ctx, tensor_2d(ctx, x, K, N), K, sh.N, sh.M));
        compute(ctx, all, threads);
        std::vector<float> wd((size_t) R * sh.M * K), xd(K);
        ggml_get_type_traits(GGML_TYPE_Q4_1)->to_float(wq->data, wd.data(), (int64_t) R * sh.M * K);
        std::vector<char> xq(ggml_row_size(GGML_TYPE_Q8_1, K));
        for (int n = 0; n < N; n++) {
            const int m = n / sh.N;  // the token's matrix, and its weight
            std::vector<float> col(x.begin() + (size_t) n * K, x.begin() + (size_t) (n + 1) * K);
            ggml_tensor * one = ggml_mul_mat(ctx, ggml_view_2d(ctx, wq, K, R, wq->nb[1], (size_t) m * wq->nb[2]), tensor_2d(ctx, col, K, 1));
            compute(ctx, one, threads);
            // the activations as the kernel sees them: Q8_1 blocks of 32 (fp16 scale d, fp16 sum s, 32 int8), d x q
            ggml_get_type_traits_cpu(GGML_TYPE_Q8_1)->from_float(col.data(), xq.data(), K);
            for (int b = 0; b < K / 32; b++) {
                const char * block = xq.data() + (size_t) b * (4 + 32);
                const float d = ggml_fp16_to_fp32(*(const ggml_fp16_t *) block);
                for (int j = 0; j < 32; j++) {
                    xd[(size_t) b * 32 + j] = d * (float) ((const int8_t *) (block + 4))[j];
                }
            }
            for (int r = 0; r < R; r++) {
                const float batched = ((float *) all->data)[(size_t) n * R + r], alone = ((float *) one->data)[r];
                CHECK(std::memcmp(&batched, &alone, sizeof(float)) == 0, "threads %d, matrix %d, row %d, token %d: %.9g in the batch, %.9g alone", threads, m, r, n, batched, alone);
                // per block: d_w d_x sum(q_w q_x) + m_w s_x, where m_w is the block's minimum and s_x its stored
                // fp16 d x sum(q) (the weight is d_w q_w + m_w; the kernel uses s_x rather than the exact sum)
                const size_t row = (size_t) m * R + r;
                double ref = 0;
                for (int b = 0; b < K / 32; b++) {
                    const char * wb = (const char *) wq->data + row * wrow + (size_t) b * (4 + 16);
                    const char * xb = xq.data() + (size_t) b * (4 + 32);
                    const double mw = ggml_fp16_to_fp32(*(const ggml_fp16_t *) (wb + 2));
                    const double sx = ggml_fp16_to_fp32(*(const ggml_fp16_t *) (xb + 2));
                    for (int j = 0; j < 32; j++) {
                        ref += ((double) wd[row * K + b * 32 + j] - mw) * xd[(size_t) b * 32 + j];
                    }
                    ref += mw * sx;
                }
                CHECK(std::fabs(batched - ref) <= 1e-3 * (1 + std::fabs(ref)), "threads %d, matrix %d, row %d, token %d: %.9g, dequantized %.9g", threads, m, r, n, batched, ref);
            }
        }
        ggml_free(ctx);
    }
}

#if defined(STEER_OUT_PROD_AVX512)
using steer_out_prod_rows8_t = void (*)(int64_t, int64_t, const float *, const float *, int64_t, float * const *);
extern "C" steer_out_prod_rows8_t steer_out_prod_rows8;  // ggml-cpu's choice for 0003's dst rows eight at a time (0018)
extern "C" void steer_avx512_out_prod_rows8(int64_t, int64_t, const float *, const float *, int64_t, float * const *);
#endif

#if defined(STEER_OUT_PROD_AMX)
using steer_out_prod_rows16_t = void (*)(int64_t, int64_t, const float *, const char *, size_t, size_t, float *, size_t, int64_t, void *);
extern "C" steer_out_prod_rows16_t steer_out_prod_rows16;  // ggml-cpu's choice of AMX tiles for 0003 (0019), or null
extern "C" void steer_amx_out_prod_rows16(int64_t, int64_t, const float *, const char *, size_t, size_t, float *, size_t, int64_t, void *);
#endif

// 0003's OUT_PROD through a quantized weight (the trainer's backward pass through the frozen weights): dst[i0, i1] =
// sum over j of W[i0, j] b[i1, j], each element one chain of FMAs over j in order, eight result rows at a time
// (0018, 512-bit vectors on a CPU with AVX-512F, which ggml_cpu_init chose exactly there), four, or one; so it must
// equal that chain in float (std::fma) to the last bit. Sizes: widths of 3 and 5 blocks of 32, and of 1 and 2 Q4_K
// blocks of 256 (a quantized row is whole blocks, so no loop has a tail); 40 weight rows (two blocks of 32 rows); 15
// result rows (eight, four and three one by one on one thread; split 8 and 7 over two).
// (0019's AMX tiles, which ggml takes before these loops where it has them, are switched off here: next test.)
static void quantized_out_prod_is_the_fma_chain() {
#if defined(STEER_OUT_PROD_AVX512)
    const bool avx512 = __builtin_cpu_supports("avx512f");
    CHECK(steer_out_prod_rows8 == (avx512 ? steer_avx512_out_prod_rows8 : nullptr), "0018: ggml took %s for a CPU %s AVX-512F",
          steer_out_prod_rows8 ? "the AVX-512 rows" : "the build's vectors", avx512 ? "with" : "without");
#endif
#if defined(STEER_OUT_PROD_AMX)
    const steer_out_prod_rows16_t amx = steer_out_prod_rows16;
    steer_out_prod_rows16 = nullptr;
#endif
    std::mt19937 rng(14);
    for (ggml_type t : {GGML_TYPE_Q4_1, GGML_TYPE_Q5_0, GGML_TYPE_Q8_0, GGML_TYPE_Q4_K}) {
        for (int ne00 : t == GGML_TYPE_Q4_K ? std::vector<int>{256, 512} : std::vector<int>{96, 160}) {
            const int ne01 = 40, ne10 = 15;
            std::vector<float> w = values(rng, (size_t) ne00 * ne01, 0.1f), b = values(rng, (size_t) ne10 * ne01, 1.0f);
            ggml_context * ctx = new_context();
            ggml_tensor * wq = ggml_new_tensor_2d(ctx, t, ne00, ne01);
            ggml_quantize_chunk(t, w.data(), wq->data, 0, ne01, ne00, nullptr);
            ggml_tensor * bt = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, ne10, ne01);  // b[i1, j] at i1 + j * ne10
            std::memcpy(bt->data, b.data(), b.size() * sizeof(float));
            ggml_tensor * out = ggml_out_prod(ctx, wq, bt);
            std::vector<float> wd((size_t) ne00 * ne01);
            ggml_get_type_traits(t)->to_float(wq->data, wd.data(), (int64_t) ne00 * ne01);
            for (int threads : {1, 2}) {
                std::fill((float *) out->data, (float *) out->data + ne00 * ne10, NAN);  // a compute that wrote nothing fails
                compute(ctx, out, threads);
                for (int i1 = 0; i1 < ne10; i1++) {
                    for (int i0 = 0; i0 < ne00; i0++) {
                        float chain = 0;
                        for (int j = 0; j < ne01; j++) {
                            chain = std::fma(wd[(size_t) j * ne00 + i0], b[(size_t) j * ne10 + i1], chain);
                        }
                        const float got = ((float *) out->data)[(size_t) i1 * ne00 + i0];
                        CHECK(std::memcmp(&got, &chain, sizeof(float)) == 0, "%s, width %d, %d threads, [%d, %d]: %.9g, the chain %.9g",
                              ggml_type_name(t), ne00, threads, i0, i1, got, chain);
                    }
                }
            }
            ggml_free(ctx);
        }
    }
#if defined(STEER_OUT_PROD_AMX)
    steer_out_prod_rows16 = amx;
#endif
}

#if defined(STEER_OUT_PROD_AMX)
// Each element of 0019's results within this share of the sum of its terms' magnitudes: three BF16 products of the
// operands' hi and lo halves are ~5e-6 of it typically and ~3e-5 for a lone term at worst (2^-15); BF16 alone, or a
// dropped hi*lo term, is ~4e-3.
static constexpr double AMX_TOLERANCE = 4e-5;

// Whether this process may use AMX tiles, asked of Linux as ggml_cpu_init does (asking twice is harmless).
static bool amx_usable() {
    return std::getenv("STEER_NO_AMX") == nullptr && __builtin_cpu_supports("amx-bf16") && __builtin_cpu_supports("avx512bf16") &&
           syscall(SYS_arch_prctl, 0x1023, 18) == 0;
}

// 0019's kernel alone, its operands ending where an inaccessible page begins, so a tile that loads or stores one row
// too many (a last group of fewer than 16 rows taken whole) or a row read past its nb terms faults: 15, 40 and 300
// dst rows (one short group; groups of 16 and a last of 8; past the 256 rows it stages at a time), 96 and 320 columns
// (past its 256-column chunk), 32 and 24 terms, the terms side by side (a backward's layout) and a row apart.
static void amx_kernel_stays_within_its_operands() {
    const size_t page = (size_t) sysconf(_SC_PAGESIZE);
    // n floats whose last one ends where a PROT_NONE page begins
    auto guarded = [&](size_t n) {
        const size_t bytes = (n * sizeof(float) + page - 1) / page * page;
        char * base = (char *) mmap(nullptr, bytes + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        CHECK(base != MAP_FAILED, "mmap");
        mprotect(base + bytes, page, PROT_NONE);
        return std::make_pair((float *) (base + bytes) - n, std::make_pair(base, bytes + page));
    };
    std::mt19937 rng(190);
    alignas(64) static char scratch[65536];
    for (int nrows : {15, 40, 300}) {
        for (int ncols : {96, 320}) {
            for (int nb : {32, 24}) {
                for (bool side_by_side : {true, false}) {
                    std::vector<float> w = values(rng, (size_t) nb * ncols, 0.1f), c = values(rng, (size_t) nrows * nb, 1.0f);
                    auto [d, dmap] = guarded((size_t) nrows * ncols);
                    auto [s1, smap] = guarded((size_t) nrows * nb);
                    for (int j = 0; j < nrows; j++) {
                        for (int k = 0; k < nb; k++) {
                            s1[side_by_side ? (size_t) j * nb + k : (size_t) k * nrows + j] = c[(size_t) j * nb + k];
                        }
                    }
                    std::vector<float> before = values(rng, (size_t) nrows * ncols, 0.01f);
                    std::copy(before.begin(), before.end(), d);
                    const size_t nb10 = (side_by_side ? nb : 1) * sizeof(float), nb11 = (side_by_side ? 1 : nrows) * sizeof(float);
                    steer_amx_out_prod_rows16(ncols, nb, w.data(), (const char *) s1, nb10, nb11, d, ncols, nrows, scratch);
                    int bad = 0;
                    for (int j = 0; j < nrows; j++) {
                        for (int i = 0; i < ncols; i++) {
                            double sum = before[(size_t) j * ncols + i], mag = std::fabs(sum);
                            for (int k = 0; k < nb; k++) {
                                const double term = (double) w[(size_t) k * ncols + i] * c[(size_t) j * nb + k];
                                sum += term;
                                mag += std::fabs(term);
                            }
                            const float got = d[(size_t) j * ncols + i];
                            if (!(std::fabs(got - sum) <= AMX_TOLERANCE * mag) && bad++ < 3) {
                                CHECK(false, "kernel, %d rows, %d columns, %d terms, %s: [%d, %d] %.9g, the sum %.9g", nrows, ncols, nb,
                                      side_by_side ? "side by side" : "a row apart", j, i, got, sum);
                            }
                        }
                    }
                    munmap(dmap.first, dmap.second);
                    munmap(smap.first, smap.second);
                }
            }
        }
    }
}

// 0019 through ggml: the same OUT_PROD on AMX tiles, which ggml_cpu_init chose exactly where this process may use
// them (the CPU has AMX-BF16 and AVX512-BF16, Linux grants the tile state, STEER_NO_AMX is unset), each element
// within AMX_TOLERANCE of the sum of its terms' magnitudes against the sum in double. Sizes: widths of 3 and 10 blocks
// of 32 (10: past the kernel's 256-column chunk on one thread) and 2 Q4_K blocks; 40 weight rows (a block of 32 and
// one of 8) or 56 (32 and 24: a block's terms past the first 16); 15, 40 (with 56) and 300 result rows (a group of
// fewer than 16 rows, groups of 16 and a last of 8, past 256 rows); the second operand as stored and transposed (a
// backward's layout, its terms side by side); 1 to 3 threads (each a run of columns; 3 threads and 2 Q4_K blocks:
// fewer runs than threads, the rows' loops instead).
static void quantized_out_prod_amx_is_the_sum() {
    const bool amx = amx_usable();
    CHECK(steer_out_prod_rows16 == (amx ? steer_amx_out_prod_rows16 : nullptr), "0019: ggml took %s where this process %s use AMX",
          steer_out_prod_rows16 ? "the AMX tiles" : "no AMX", amx ? "may" : "may not");
    if (!amx) {
        std::printf("ggml_kernels_test: no AMX here (CPU, OS or STEER_NO_AMX): 0019 not run\n");
        return;
    }
    amx_kernel_stays_within_its_operands();
    std::mt19937 rng(19);
    for (ggml_type t : {GGML_TYPE_Q4_1, GGML_TYPE_Q8_0, GGML_TYPE_Q4_K}) {
        for (int ne00 : t == GGML_TYPE_Q4_K ? std::vector<int>{512} : std::vector<int>{96, 320}) {
            for (int ne10 : {15, 40, 300}) {
                for (bool transposed : {false, true}) {
                    const int ne01 = ne10 == 40 ? 56 : 40;
                    std::vector<float> w = values(rng, (size_t) ne00 * ne01, 0.1f), b = values(rng, (size_t) ne10 * ne01, 1.0f);
                    ggml_context * ctx = new_context();
                    ggml_tensor * wq = ggml_new_tensor_2d(ctx, t, ne00, ne01);
                    ggml_quantize_chunk(t, w.data(), wq->data, 0, ne01, ne00, nullptr);
                    ggml_tensor * bt;  // b[i1, j]
                    if (transposed) {  // stored [ne01, ne10] (j fastest), viewed transposed
                        ggml_tensor * g = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, ne01, ne10);
                        for (int i1 = 0; i1 < ne10; i1++) {
                            for (int j = 0; j < ne01; j++) {
                                ((float *) g->data)[(size_t) i1 * ne01 + j] = b[(size_t) j * ne10 + i1];
                            }
                        }
                        bt = ggml_transpose(ctx, g);
                    } else {
                        bt = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, ne10, ne01);
                        std::memcpy(bt->data, b.data(), b.size() * sizeof(float));
                    }
                    ggml_tensor * out = ggml_out_prod(ctx, wq, bt);
                    std::vector<float> wd((size_t) ne00 * ne01);
                    ggml_get_type_traits(t)->to_float(wq->data, wd.data(), (int64_t) ne00 * ne01);
                    for (int threads : {1, 2, 3}) {
                        std::fill((float *) out->data, (float *) out->data + (size_t) ne00 * ne10, NAN);
                        compute(ctx, out, threads);
                        int bad = 0;
                        for (int i1 = 0; i1 < ne10; i1++) {
                            for (int i0 = 0; i0 < ne00; i0++) {
                                double sum = 0, mag = 0;
                                for (int j = 0; j < ne01; j++) {
                                    const double term = (double) wd[(size_t) j * ne00 + i0] * b[(size_t) j * ne10 + i1];
                                    sum += term;
                                    mag += std::fabs(term);
                                }
                                const float got = ((float *) out->data)[(size_t) i1 * ne00 + i0];
                                if (!(std::fabs(got - sum) <= AMX_TOLERANCE * mag + 1e-30) && bad++ < 3) {
                                    CHECK(false, "%s, width %d, %d rows, %s, %d threads, [%d, %d]: %.9g, the sum %.9g (terms' magnitude %.3g)",
                                          ggml_type_name(t), ne00, ne10, transposed ? "transposed" : "as stored", threads, i0, i1, got, sum, mag);
                                }
                            }
                        }
                    }
                    ggml_free(ctx);
                }
            }
        }
    }
}
#endif

#if defined(STEER_SGEMM_AVX512) || defined(STEER_QUANTS_AVX512)
// What 0012's and 0013's dispatch asks of the CPU (and the OS) before it takes an AVX-512 copy.
static bool cpu_has_avx512_vnni() {
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vnni");
}
#endif

#if defined(STEER_SGEMM_AVX512)
// 0012: tinyBLAS compiled for AVX-512 with VNNI, beside the portable one. ggml-cpu's work-split parameters, as in
// its ggml-cpu-impl.h (internal to ggml-cpu; the quantized kernels read only ith and nth).
struct sgemm_params {
    int ith, nth;
    size_t wsize;
    void * wdata;
    void * threadpool;
    bool use_ref;
};
extern "C" bool llamafile_sgemm(const sgemm_params *, int64_t, int64_t, int64_t, const void *, int64_t, const void *,
                                int64_t, void *, int64_t, int, int, int);
extern "C" bool steer_llamafile_sgemm_avx512(const sgemm_params *, int64_t, int64_t, int64_t, const void *, int64_t,
                                             const void *, int64_t, void *, int64_t, int, int, int);

// Quantized weights (Q4_0, Q5_0, Q8_0) times Q8_0 tokens: both paths give the same floats to the last bit (exact int8
// sums, the same order per result), and those are the dequantized dot products (checked in double). The entry points
// are called directly; which one ggml's matmul calls (the patch's dispatch) is not checked here: bench/README.md shows
// its effect on Gemma 3's prompt.
static void sgemm_avx512_is_the_portable_one() {
    const bool avx512 = cpu_has_avx512_vnni();
    if (!avx512) {
        std::printf("ggml_kernels_test: this CPU has no AVX-512 VNNI; 0012's AVX-512 path not run, the portable one checked\n");
    }
    std::mt19937 rng(12);
    const int k = 256;                  // 8 blocks of 32
    const int sizes[][2] = {{64, 16}, {37, 5}, {8, 2}, {37, 35}, {20, 513}};  // rows x tokens: tiles, odd edges, the fewest tinyBLAS takes, a prompt
    for (ggml_type wt : {GGML_TYPE_Q4_0, GGML_TYPE_Q5_0, GGML_TYPE_Q8_0}) {
        for (auto & mn : sizes) {
            const int m = mn[0], n = mn[1];
            std::vector<float> w = values(rng, (size_t) m * k, 0.05f), x = values(rng, (size_t) n * k, 1.0f);
            std::vector<uint8_t> wq(ggml_row_size(wt, k) * m), xq(ggml_row_size(GGML_TYPE_Q8_0, k) * n);
            ggml_quantize_chunk(wt, w.data(), wq.data(), 0, m, k, nullptr);
            ggml_quantize_chunk(GGML_TYPE_Q8_0, x.data(), xq.data(), 0, n, k, nullptr);
            std::vector<float> wd((size_t) m * k), xd((size_t) n * k);
            ggml_get_type_traits(wt)->to_float(wq.data(), wd.data(), (int64_t) m * k);
            ggml_get_type_traits(GGML_TYPE_Q8_0)->to_float(xq.data(), xd.data(), (int64_t) n * k);
            std::vector<float> portable((size_t) m * n, NAN), wide((size_t) m * n, NAN);
            const sgemm_params one = {0, 1, 0, nullptr, nullptr, false};
            const int64_t blocks = k / 32;
            CHECK(llamafile_sgemm(&one, m, n, blocks, wq.data(), blocks, xq.data(), blocks, portable.data(), m,
                                  wt, GGML_TYPE_Q8_0, GGML_TYPE_F32), "portable tinyBLAS took %s", ggml_type_name(wt));
            for (int j = 0; j < n; j++) {
                for (int i = 0; i < m; i++) {
                    double ref = 0;
                    for (int l = 0; l < k; l++) {
                        ref += (double) wd[(size_t) i * k + l] * xd[(size_t) j * k + l];
                    }
                    const float got = portable[(size_t) j * m + i];
                    CHECK(std::fabs(got - ref) <= 1e-4 * (1 + std::fabs(ref)), "%s %dx%d [%d,%d]: %g vs %g",
                          ggml_type_name(wt), m, n, i, j, got, ref);
                }
            }
            if (avx512) {
                CHECK(steer_llamafile_sgemm_avx512(&one, m, n, blocks, wq.data(), blocks, xq.data(), blocks, wide.data(), m,
                                                   wt, GGML_TYPE_Q8_0, GGML_TYPE_F32), "AVX-512 tinyBLAS took %s", ggml_type_name(wt));
                CHECK(std::memcmp(portable.data(), wide.data(), portable.size() * sizeof(float)) == 0,
                      "%s %dx%d: the AVX-512 path differs from the portable one", ggml_type_name(wt), m, n);
            }
        }
    }
}
#endif

#if defined(STEER_QUANTS_AVX512)
// 0013: ggml's x86 int8 dot products compiled for AVX-512 with VNNI, beside the portable ones (both internal to
// ggml-cpu, called directly here).
#define STEER_VEC_DOT_PAIR(name)                                                                                  \
    extern "C" void name(int, float *, size_t, const void *, size_t, const void *, size_t, int);              \
    extern "C" void steer_avx512_##name(int, float *, size_t, const void *, size_t, const void *, size_t, int);
STEER_VEC_DOT_PAIR(ggml_vec_dot_q4_0_q8_0)
STEER_VEC_DOT_PAIR(ggml_vec_dot_q4_1_q8_1)
STEER_VEC_DOT_PAIR(ggml_vec_dot_q5_0_q8_0)
STEER_VEC_DOT_PAIR(ggml_vec_dot_q5_1_q8_1)
STEER_VEC_DOT_PAIR(ggml_vec_dot_q8_0_q8_0)
#undef STEER_VEC_DOT_PAIR
// 0017: Q4_1's two rows by four tokens, the AVX2 kernel and its AVX-512 copy
extern "C" void ggml_vec_dot_q4_1_q8_1_2x4(int, float *, size_t, const void *, size_t, const void *, size_t);
extern "C" void steer_avx512_ggml_vec_dot_q4_1_q8_1_2x4(int, float *, size_t, const void *, size_t, const void *, size_t);

// Each weight type's dot product with its activations (quantized as ggml quantizes them): the AVX-512 copy gives the
// portable one's float to the last bit (exact int8 sums), one row by one token and, for Q4_1, two by two (patch
// 0011's layout), each of those four results the one-by-one kernel's; the portable one is the dequantized dot
// product (checked in double); and ggml_cpu_init made ggml's table point at the copy exactly when this CPU has
// AVX-512 VNNI.
static void int8_dots_avx512_are_the_portable_ones() {
    const bool avx512 = cpu_has_avx512_vnni();
    if (!avx512) {
        std::printf("ggml_kernels_test: this CPU has no AVX-512 VNNI; 0013's AVX-512 dot products not run, the portable ones checked\n");
    }
    using dot = void (*)(int, float *, size_t, const void *, size_t, const void *, size_t, int);
    struct kind {
        ggml_type type;
        dot portable, wide;
    };
    const kind kinds[] = {
        {GGML_TYPE_Q4_0, ggml_vec_dot_q4_0_q8_0, steer_avx512_ggml_vec_dot_q4_0_q8_0},
        {GGML_TYPE_Q4_1, ggml_vec_dot_q4_1_q8_1, steer_avx512_ggml_vec_dot_q4_1_q8_1},
        {GGML_TYPE_Q5_0, ggml_vec_dot_q5_0_q8_0, steer_avx512_ggml_vec_dot_q5_0_q8_0},
        {GGML_TYPE_Q5_1, ggml_vec_dot_q5_1_q8_1, steer_avx512_ggml_vec_dot_q5_1_q8_1},
        {GGML_TYPE_Q8_0, ggml_vec_dot_q8_0_q8_0, steer_avx512_ggml_vec_dot_q8_0_q8_0},
    };
    std::mt19937 rng(13);
    const int k = 640;  // 20 blocks of 32 (Gemma 3 270M's width)
    for (const kind & c : kinds) {
        const ggml_type at = ggml_get_type_traits_cpu(c.type)->vec_dot_type;
        const dot chosen = ggml_get_type_traits_cpu(c.type)->vec_dot;
        CHECK(chosen == (avx512 ? c.wide : c.portable), "%s: ggml's table has the %s dot product", ggml_type_name(c.type),
              chosen == c.wide ? "AVX-512" : chosen == c.portable ? "portable" : "wrong");
        const size_t wrow = ggml_row_size(c.type, k), arow = ggml_row_size(at, k);
        for (int trial = 0; trial < 8; trial++) {
            std::vector<float> w = values(rng, (size_t) 2 * k, 0.05f * (trial + 1)), x = values(rng, (size_t) 2 * k, 1.0f);
            std::vector<uint8_t> wq(2 * wrow), xq(2 * arow);
            ggml_quantize_chunk(c.type, w.data(), wq.data(), 0, 2, k, nullptr);
            for (int t = 0; t < 2; t++) {
                ggml_get_type_traits_cpu(at)->from_float(x.data() + (size_t) t * k, xq.data() + t * arow, k);
            }
            std::vector<float> wd((size_t) k), xd((size_t) k);
            ggml_get_type_traits(c.type)->to_float(wq.data(), wd.data(), k);
            // the activations as the kernel sees them (ggml-base has no to_float for Q8_1): blocks of an fp16 scale d,
            // for Q8_1 an fp16 sum, then 32 int8 q; the value d x q
            const size_t head = at == GGML_TYPE_Q8_1 ? 4 : 2, block = head + 32;
            for (int b = 0; b < k / 32; b++) {
                const uint8_t * xb = xq.data() + (size_t) b * block;
                const float d = ggml_fp16_to_fp32(*(const ggml_fp16_t *) xb);
                for (int j = 0; j < 32; j++) {
                    xd[(size_t) b * 32 + j] = d * (float) ((const int8_t *) (xb + head))[j];
                }
            }
            float portable = NAN, wide = NAN;
            c.portable(k, &portable, 0, wq.data(), 0, xq.data(), 0, 1);
            double ref = 0;
            for (int b = 0; b < k / 32; b++) {
                // Q4_1/Q5_1 weights are d q + m per block (m at byte 2), and their kernels take m times Q8_1's stored
                // fp16 sum s rather than the exact sum of the activations
                const double m = at == GGML_TYPE_Q8_1 ? ggml_fp16_to_fp32(*(const ggml_fp16_t *) (wq.data() + (size_t) b * (wrow / (k / 32)) + 2)) : 0;
                for (int j = 0; j < 32; j++) {
                    ref += ((double) wd[(size_t) b * 32 + j] - m) * xd[(size_t) b * 32 + j];
                }
                if (at == GGML_TYPE_Q8_1) {
                    ref += m * ggml_fp16_to_fp32(*(const ggml_fp16_t *) (xq.data() + (size_t) b * block + 2));
                }
            }
            CHECK(std::fabs(portable - ref) <= 1e-4 * (1 + std::fabs(ref)), "%s: %.9g, dequantized %.9g", ggml_type_name(c.type), portable, ref);
            if (!avx512) {
                continue;
            }
            c.wide(k, &wide, 0, wq.data(), 0, xq.data(), 0, 1);
            CHECK(std::memcmp(&portable, &wide, sizeof(float)) == 0, "%s trial %d: AVX-512 %.9g, portable %.9g", ggml_type_name(c.type), trial, wide, portable);
            if (ggml_get_type_traits_cpu(c.type)->nrows == 2) {  // two rows by two tokens (0011): s[0], s[1], s[16], s[17]
                std::vector<float> p2(32, 0.0f), w2(32, 0.0f);
                c.portable(k, p2.data(), 16, wq.data(), wrow, xq.data(), arow, 2);
                c.wide(k, w2.data(), 16, wq.data(), wrow, xq.data(), arow, 2);
                CHECK(std::memcmp(p2.data(), w2.data(), p2.size() * sizeof(float)) == 0, "%s trial %d: two by two differs", ggml_type_name(c.type), trial);
                for (int r = 0; r < 2; r++) {  // each of the four, not only the first
                    for (int t = 0; t < 2; t++) {
                        float one = NAN;
                        c.portable(k, &one, 0, wq.data() + r * wrow, 0, xq.data() + t * arow, 0, 1);
                        CHECK(std::memcmp(&w2[r + 16 * t], &one, sizeof(float)) == 0, "%s trial %d: two by two's (row %d, token %d) %.9g, one by one %.9g",
                              ggml_type_name(c.type), trial, r, t, w2[r + 16 * t], one);
                    }
                }
            }
        }
    }
    // 0017: Q4_1 two rows by four tokens: each of the eight results (s[r + 16 t]) the one-by-one kernel's, bit for
    // bit, in the AVX2 kernel and (on such a CPU) its AVX-512 copy; scales over three decades, so that the min terms'
    // and the scale products' roundings differ from token to token
    const size_t wrow = ggml_row_size(GGML_TYPE_Q4_1, k), arow = ggml_row_size(GGML_TYPE_Q8_1, k);
    for (int trial = 0; trial < 8; trial++) {
        std::vector<float> w = values(rng, (size_t) 2 * k, 0.01f * (1 << trial)), x = values(rng, (size_t) 4 * k, 1.0f);
        for (int t = 0; t < 4; t++) {
            for (int i = 0; i < k; i++) {
                x[(size_t) t * k + i] *= (float) (t + 1) * (t + 1) * 0.1f;
            }
        }
        std::vector<uint8_t> wq(2 * wrow), xq(4 * arow);
        ggml_quantize_chunk(GGML_TYPE_Q4_1, w.data(), wq.data(), 0, 2, k, nullptr);
        for (int t = 0; t < 4; t++) {
            ggml_get_type_traits_cpu(GGML_TYPE_Q8_1)->from_float(x.data() + (size_t) t * k, xq.data() + t * arow, k);
        }
        using two_by_four = void (*)(int, float *, size_t, const void *, size_t, const void *, size_t);
        for (two_by_four f : {ggml_vec_dot_q4_1_q8_1_2x4, steer_avx512_ggml_vec_dot_q4_1_q8_1_2x4}) {
            if (f == steer_avx512_ggml_vec_dot_q4_1_q8_1_2x4 && !avx512) {
                continue;
            }
            std::vector<float> got(64, NAN);
            f(k, got.data(), 16, wq.data(), wrow, xq.data(), arow);
            for (int r = 0; r < 2; r++) {
                for (int t = 0; t < 4; t++) {
                    float one = NAN;
                    ggml_vec_dot_q4_1_q8_1(k, &one, 0, wq.data() + r * wrow, 0, xq.data() + t * arow, 0, 1);
                    CHECK(std::memcmp(&got[r + 16 * t], &one, sizeof(float)) == 0, "Q4_1 trial %d: %s two by four's (row %d, token %d) %.9g, one by one %.9g",
                          trial, f == ggml_vec_dot_q4_1_q8_1_2x4 ? "AVX2" : "AVX-512", r, t, got[r + 16 * t], one);
                }
            }
        }
    }
}
#endif

// 0021: a float matmul whose second operand is a strided view (the trainer's K^T Q: heads of q and k permuted, k's
// heads broadcast over q's) equals ggml_vec_dot_f32 per result, bit for bit: head sizes that take the four-row
// kernel (32, 64, 96) and one that does not (40), rows that are not a multiple of four, 1 to 3 threads.
static void f32_strided_matmul_is_the_vec_dot() {
    std::mt19937 rng(21);
    for (int hd : {32, 64, 96, 40}) {
        for (int threads : {1, 2, 3}) {
            const int T = 37, heads = 3, kv = 1;
            ggml_context * ctx = new_context();
            const std::vector<float> kv_ = values(rng, (size_t) hd * kv * T, 1.0f), qv = values(rng, (size_t) hd * heads * T, 1.0f);
            ggml_tensor * k = ggml_new_tensor_3d(ctx, GGML_TYPE_F32, hd, kv, T);
            ggml_tensor * q = ggml_new_tensor_3d(ctx, GGML_TYPE_F32, hd, heads, T);
            std::copy(kv_.begin(), kv_.end(), (float *) k->data);
            std::copy(qv.begin(), qv.end(), (float *) q->data);
            ggml_tensor * out = ggml_mul_mat(ctx, ggml_permute(ctx, k, 0, 2, 1, 3), ggml_permute(ctx, q, 0, 2, 1, 3));  // [T, T, heads]
            compute(ctx, out, threads);
            int wrong = 0;
            for (int h = 0; h < heads; h++) {
                for (int iq = 0; iq < T; iq++) {
                    for (int ik = 0; ik < T; ik++) {
                        float want;
                        ggml_vec_dot_f32(hd, &want, 0, &kv_[((size_t) ik * kv + h / (heads / kv)) * hd], 0, &qv[((size_t) iq * heads + h) * hd], 0, 1);
                        const float got = ((const float *) out->data)[((size_t) h * T + iq) * T + ik];
                        wrong += std::memcmp(&want, &got, sizeof want) != 0;
                    }
                }
            }
            CHECK(wrong == 0, "head size %d, %d threads: %d of %d results not ggml_vec_dot_f32's", hd, threads, wrong, heads * T * T);
            ggml_free(ctx);
        }
    }
}

// 0020: the cross-entropy's backward computed in place over its logits (and never over its labels), the same values
// as into a tensor of its own. The graph: logits = x + y (a node the allocator owns), back = CE_back(g, logits,
// labels); with `read_after` a node that reads the logits after back, so they are not free for it: then nothing
// of back's sources may be reused (the labels, read after the result is written, would give wrong values).
static std::vector<float> cross_entropy_back(bool logits_as_output, bool read_after, bool * in_place_logits, bool * in_place_labels) {
    const int64_t vocab = 1000, rows = 5;
    std::mt19937 rng(20);
    const std::vector<float> xv = values(rng, vocab * rows, 2.0f), yv = values(rng, vocab * rows, 1.0f);
    std::vector<float> lv(vocab * rows, 0.0f);
    for (int64_t r = 0; r < rows; r++) {
        lv[r * vocab + (r * 37) % vocab] = 1.0f;  // one-hot labels, as the trainer's learn rows
    }
    ggml_init_params p = { ggml_tensor_overhead() * 16 + ggml_graph_overhead(), nullptr, true };
    ggml_context * ctx = ggml_init(p);
    ggml_tensor * x = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, vocab, rows);
    ggml_tensor * y = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, vocab, rows);
    ggml_tensor * labels = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, vocab, rows);
    ggml_tensor * g = ggml_new_tensor_1d(ctx, GGML_TYPE_F32, 1);
    for (ggml_tensor * t : {x, y, labels, g}) {
        ggml_set_input(t);
    }
    ggml_tensor * logits = ggml_add(ctx, x, y);
    if (logits_as_output) {
        ggml_set_output(logits);
    }
    ggml_tensor * back = ggml_cross_entropy_loss_back(ctx, g, logits, labels);
    ggml_set_output(back);
    ggml_cgraph * gf = ggml_new_graph(ctx);
    ggml_build_forward_expand(gf, back);
    ggml_tensor * after = nullptr;
    if (read_after) {
        after = ggml_sum(ctx, logits);
        ggml_set_output(after);
        ggml_build_forward_expand(gf, after);
    }
    ggml_gallocr_t alloc = ggml_gallocr_new(ggml_backend_cpu_buffer_type());
    CHECK(ggml_gallocr_alloc_graph(alloc, gf), "allocation failed");
    *in_place_logits = back->data == logits->data;
    *in_place_labels = back->data == labels->data;
    const float gv = 0.7f;
    ggml_backend_tensor_set(x, xv.data(), 0, xv.size() * sizeof(float));
    ggml_backend_tensor_set(y, yv.data(), 0, yv.size() * sizeof(float));
    ggml_backend_tensor_set(labels, lv.data(), 0, lv.size() * sizeof(float));
    ggml_backend_tensor_set(g, &gv, 0, sizeof gv);
    ggml_backend_t cpu = ggml_backend_cpu_init();
    ggml_backend_cpu_set_n_threads(cpu, 2);
    CHECK(ggml_backend_graph_compute(cpu, gf) == GGML_STATUS_SUCCESS, "compute failed");
    std::vector<float> out(vocab * rows);
    ggml_backend_tensor_get(back, out.data(), 0, out.size() * sizeof(float));
    // against the formula in double: (softmax(x + y) - labels) * g / rows
    double worst = 0;
    for (int64_t r = 0; r < rows; r++) {
        double mx = -INFINITY, sum = 0;
        for (int64_t i = 0; i < vocab; i++) {
            mx = std::max(mx, (double) (xv[r * vocab + i] + yv[r * vocab + i]));
        }
        for (int64_t i = 0; i < vocab; i++) {
            sum += std::exp((double) (xv[r * vocab + i] + yv[r * vocab + i]) - mx);
        }
        for (int64_t i = 0; i < vocab; i++) {
            const double want = (std::exp((double) (xv[r * vocab + i] + yv[r * vocab + i]) - mx) / sum - lv[r * vocab + i]) * gv / rows;
            worst = std::max(worst, std::fabs(want - out[r * vocab + i]));
        }
    }
    CHECK(worst < 1e-6, "cross-entropy backward off the formula by %g", worst);
    ggml_backend_free(cpu);
    ggml_gallocr_free(alloc);
    ggml_free(ctx);
    return out;
}

static void cross_entropy_back_in_place_over_the_logits() {
    bool logits_reused = false, labels_reused = false;
    const std::vector<float> apart = cross_entropy_back(true, false, &logits_reused, &labels_reused);
    CHECK(!logits_reused && !labels_reused, "an output's memory was reused");
    const std::vector<float> in_place = cross_entropy_back(false, false, &logits_reused, &labels_reused);
    CHECK(logits_reused, "the backward did not take the logits' memory");
    CHECK(!labels_reused, "the backward took the labels' memory");
    CHECK(std::memcmp(apart.data(), in_place.data(), apart.size() * sizeof(float)) == 0, "in place: other values");
    const std::vector<float> read_after = cross_entropy_back(false, true, &logits_reused, &labels_reused);
    CHECK(!logits_reused && !labels_reused, "a source still read, or the labels, reused");
    CHECK(std::memcmp(apart.data(), read_after.data(), apart.size() * sizeof(float)) == 0, "logits read after: other values");
}

#if defined(STEER_VEC_F16_AVX512)
using steer_vec_dot_f16_t = void (*)(int, float *, size_t, ggml_fp16_t *, size_t, ggml_fp16_t *, size_t, int);
using steer_vec_mad_f16_t = void (*)(int, ggml_fp16_t *, const ggml_fp16_t *, float);
using steer_vec_scale_f16_t = void (*)(int, ggml_fp16_t *, float);
extern "C" steer_vec_dot_f16_t steer_fattn_dot_f16;  // ggml-cpu's choice for flash attention's F16 loops (0022)
extern "C" steer_vec_mad_f16_t steer_fattn_mad_f16;
extern "C" steer_vec_scale_f16_t steer_fattn_scale_f16;
extern "C" void steer_avx512_vec_dot_f16(int, float *, size_t, ggml_fp16_t *, size_t, ggml_fp16_t *, size_t, int);
extern "C" void steer_avx512_vec_mad_f16(int, ggml_fp16_t *, const ggml_fp16_t *, float);
extern "C" void steer_avx512_vec_scale_f16(int, ggml_fp16_t *, float);

// 0022: flash attention over F16 keys and values (a decoded token's attention), with the AVX-512 loops ggml_cpu_init
// chose exactly where the CPU has AVX-512F and with the build's, each against softmax(K q * scale) V in double from
// the same F16 keys and values. The value accumulator is F16, so each result is within ~1e-3 of the values' scale
// either way; a dot product or a multiply-add that skipped a vector, or a scale that went missing, is off by tenths.
// Head sizes 64 (SmolLM2's), 80 (a tail past the vectors) and 256 (Gemma 3's); 2 query heads per key head; 1, 3 and
// 200 cached tokens, so the running maximum rescales the accumulator many times.
static void flash_attn_f16_is_the_softmax() {
    const bool avx512 = __builtin_cpu_supports("avx512f");
    CHECK(steer_fattn_dot_f16 == (avx512 ? steer_avx512_vec_dot_f16 : nullptr) &&
          steer_fattn_mad_f16 == (avx512 ? steer_avx512_vec_mad_f16 : nullptr) &&
          steer_fattn_scale_f16 == (avx512 ? steer_avx512_vec_scale_f16 : nullptr),
          "0022: ggml took %s for a CPU %s AVX-512F", steer_fattn_dot_f16 ? "the AVX-512 loops" : "the build's", avx512 ? "with" : "without");
    const steer_vec_dot_f16_t dot = steer_fattn_dot_f16;
    const steer_vec_mad_f16_t mad = steer_fattn_mad_f16;
    const steer_vec_scale_f16_t scale_f16 = steer_fattn_scale_f16;
    std::mt19937 rng(22);
    for (int d : {64, 80, 256}) {
        for (int n_kv : {1, 3, 200}) {
            const int n_head = 4, n_head_kv = 2, n_q = 2;
            const float scale = 1.0f / std::sqrt((float) d);
            ggml_context * ctx = new_context();
            ggml_tensor * q = ggml_new_tensor_3d(ctx, GGML_TYPE_F32, d, n_q, n_head);
            ggml_tensor * k = ggml_new_tensor_3d(ctx, GGML_TYPE_F16, d, n_kv, n_head_kv);
            ggml_tensor * v = ggml_new_tensor_3d(ctx, GGML_TYPE_F16, d, n_kv, n_head_kv);
            const std::vector<float> qv = values(rng, (size_t) d * n_q * n_head, 1.0f);
            const std::vector<float> kv = values(rng, (size_t) d * n_kv * n_head_kv, 1.0f);
            const std::vector<float> vv = values(rng, (size_t) d * n_kv * n_head_kv, 1.0f);
            std::memcpy(q->data, qv.data(), qv.size() * sizeof(float));
            ggml_fp32_to_fp16_row(kv.data(), (ggml_fp16_t *) k->data, (int64_t) kv.size());
            ggml_fp32_to_fp16_row(vv.data(), (ggml_fp16_t *) v->data, (int64_t) vv.size());
            std::vector<float> k16(kv.size()), v16(vv.size());  // the values attention sees
            ggml_fp16_to_fp32_row((const ggml_fp16_t *) k->data, k16.data(), (int64_t) k16.size());
            ggml_fp16_to_fp32_row((const ggml_fp16_t *) v->data, v16.data(), (int64_t) v16.size());
            ggml_tensor * out = ggml_flash_attn_ext(ctx, q, k, v, nullptr, scale, 0.0f, 0.0f);  // [d, n_head, n_q]
            for (bool wide : {true, false}) {
                if (wide && !dot) {
                    continue;
                }
                steer_fattn_dot_f16 = wide ? dot : nullptr;
                steer_fattn_mad_f16 = wide ? mad : nullptr;
                steer_fattn_scale_f16 = wide ? scale_f16 : nullptr;
                for (int threads : {1, 2}) {
                    std::fill((float *) out->data, (float *) out->data + (size_t) d * n_head * n_q, NAN);
                    compute(ctx, out, threads);
                    for (int h = 0; h < n_head; h++) {
                        const int hk = h / (n_head / n_head_kv);
                        for (int t = 0; t < n_q; t++) {
                            std::vector<double> w(n_kv);
                            double m = -INFINITY, sum = 0;
                            for (int c = 0; c < n_kv; c++) {
                                double s = 0;
                                for (int i = 0; i < d; i++) {
                                    // Q as attention sees it: converted to F16 first (K's dot type)
                                    const float qi = ggml_fp16_to_fp32(ggml_fp32_to_fp16(qv[((size_t) h * n_q + t) * d + i]));
                                    s += (double) qi * k16[((size_t) hk * n_kv + c) * d + i];
                                }
                                w[c] = s * scale;
                                m = std::max(m, w[c]);
                            }
                            for (int c = 0; c < n_kv; c++) {
                                w[c] = std::exp(w[c] - m);
                                sum += w[c];
                            }
                            for (int i = 0; i < d; i++) {
                                double ref = 0;
                                for (int c = 0; c < n_kv; c++) {
                                    ref += w[c] / sum * v16[((size_t) hk * n_kv + c) * d + i];
                                }
                                const float got = ((float *) out->data)[((size_t) t * n_head + h) * d + i];
                                CHECK(std::fabs(got - ref) <= 4e-3 * (1 + std::fabs(ref)), "%s loops, head size %d, %d cached, %d threads, head %d, query %d, [%d]: %.6g, softmax %.6g",
                                      wide ? "AVX-512" : "the build's", d, n_kv, threads, h, t, i, got, ref);
                            }
                        }
                    }
                }
            }
            steer_fattn_dot_f16 = dot;
            steer_fattn_mad_f16 = mad;
            steer_fattn_scale_f16 = scale_f16;
            ggml_free(ctx);
        }
    }
}
#endif

int main() {
    ggml_cpu_init();  // FP16 conversion tables: a kernel called outside a graph needs them first
    q4_1_matmul_is_batch_invariant();
    dequantized_rows_are_ggml_bases();
    gelu_is_the_tanh_formula();
    narrow_out_prod_is_the_sum();
    f32_out_prod_is_the_fma_chain();
    quantized_out_prod_is_the_fma_chain();
    cross_entropy_back_in_place_over_the_logits();
    f32_strided_matmul_is_the_vec_dot();
#if defined(STEER_OUT_PROD_AMX)
    quantized_out_prod_amx_is_the_sum();
#endif
#if defined(STEER_SGEMM_AVX512)
    sgemm_avx512_is_the_portable_one();
#endif
#if defined(STEER_QUANTS_AVX512)
    int8_dots_avx512_are_the_portable_ones();
#endif
#if defined(STEER_VEC_F16_AVX512)
    flash_attn_f16_is_the_softmax();
#endif
    if (failures) {
        std::fprintf(stderr, "ggml_kernels_test: %d checks failed\n", failures);
        return 1;
    }
    std::printf("ggml_kernels_test: all checks passed\n");
    return 0;
}

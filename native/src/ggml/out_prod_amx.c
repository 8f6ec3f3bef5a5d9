// 0003's quantized OUT_PROD (the trainer's backward through a frozen weight: dequantized weight rows times the output's
// gradient, added into the rows of the input's gradient) on Intel's AMX tile unit: a thread's columns of every dst
// row, 16 rows by 32 columns a tile pair. Here (a 2-core Sapphire Rapids Xeon) one core's AMX-BF16 does ~1500 G
// multiply-adds a second against ~26 G for AVX-512's FMA, which 0018's loop is bound by; this was 28% of a SmolLM2
// training step.
//
// AMX multiplies BF16 (8-bit mantissas), too coarse for a gradient to stand in for F32, so each operand is split
// into two BF16 numbers, x = hi + lo (hi = x rounded to BF16, lo = the rest rounded), and the product is summed as
// hi*hi + hi*lo + lo*hi ("bf16x3", as oneDNN's and XLA's F32-through-BF16 modes do): what is left out, lo*lo, and
// the rounding of lo, in F32 accumulators. So not 0018's numbers to the last bit: ~5e-6 of each sum's terms
// typically, 2^-15 of a lone term at worst (native/tests/ggml_kernels_test.cpp bounds it at 4e-5 elementwise against
// a double-precision sum).
//
// Patch 0019 declares it (ggml-cpu/ops.h), calls it from 0003's kernel with each thread's staging in the graph's
// work buffer, and has ggml_cpu_init choose it where the CPU has AMX-BF16 and AVX512-BF16 and Linux grants the process
// the tile data state (arch_prctl); native/CMakeLists.txt compiles this file with those flags.
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#define ROWS 16  // dst rows per tile: AMX's row count
#define K 32     // weight rows per call at most: one BF16 tile's depth (64 bytes a row)

typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tile_config;

// The tiles: 0 and 1 two dst blocks of `rows` x 16 floats side by side; 2 and 3 the gradient's rows (hi, lo) as A,
// `rows` x 32 BF16; 4 to 7 the weight's 16 pairs of rows (hi, lo for each of the two column blocks) as B, 16 columns
// x 2 BF16 a row, AMX's pair-interleaved layout.
static void configure(int rows) {
    tile_config c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    for (int t = 0; t < 8; ++t) {
        c.rows[t] = t < 4 ? rows : K / 2;
        c.colsb[t] = 64;
    }
    _tile_loadconfig(&c);
}

// hi and lo halves of 32 floats (a then b) as BF16, in that order.
static inline void split(__m512 a, __m512 b, __m512bh * hi, __m512bh * lo) {
    *hi = _mm512_cvtne2ps_pbh(b, a);
    // hi back to F32 (a BF16 is the top half of an F32), then what rounding left out
    const __m512i h = (__m512i) *hi;
    const __m512 ha = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(h)), 16));
    const __m512 hb = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(h, 1)), 16));
    *lo = _mm512_cvtne2ps_pbh(_mm512_sub_ps(b, hb), _mm512_sub_ps(a, ha));
}

// Columns per B buffer: the weight block's pairs of rows for 256 columns, hi and lo (16 KiB each), on the stack.
#define CHUNK 256

// The weight block's columns [n0, n0 + n) as B tiles: row p holds, for each column, (w[2p][i], w[2p+1][i]); rows
// past nb are zeros.
static void pack_weights(int64_t ncols, int64_t nb, const float * w, int64_t n0, int64_t n, uint16_t * b_hi, uint16_t * b_lo) {
    const __m512i first = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i second = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
    for (int64_t p = 0; p < K / 2; ++p) {
        const int64_t k0 = 2 * p, k1 = 2 * p + 1;
        for (int64_t i = 0; i < n; i += 16) {
            const __m512 w0 = k0 < nb ? _mm512_loadu_ps(w + k0 * ncols + n0 + i) : _mm512_setzero_ps();
            const __m512 w1 = k1 < nb ? _mm512_loadu_ps(w + k1 * ncols + n0 + i) : _mm512_setzero_ps();
            __m512bh hi, lo;
            split(_mm512_permutex2var_ps(w0, first, w1), _mm512_permutex2var_ps(w0, second, w1), &hi, &lo);
            _mm512_store_si512((__m512i *) (b_hi + p * 2 * CHUNK + 2 * i), (__m512i) hi);
            _mm512_store_si512((__m512i *) (b_lo + p * 2 * CHUNK + 2 * i), (__m512i) lo);
        }
    }
}

// Row groups whose A tiles are built at a time: 256 dst rows, hi and lo, 32 KiB.
#define GROUPS 16

void steer_amx_out_prod_rows16(int64_t ncols, int64_t nb, const float * w, const char * s1, size_t nb10, size_t nb11,
                               float * d, size_t dstride, int64_t nrows, void * scratch);

// Adds, for rows j < nrows and columns i < ncols (a multiple of 32), the sum over k < nb (at most 32) of
// w[k*ncols + i] * c(j, k) into d[j*dstride + i], where c(j, k) is the float at s1 + j*nb10 + k*nb11 (bytes).
// scratch: 64 KiB, 64-byte aligned (ops.h's STEER_AMX_OUT_PROD_SCRATCH), the caller's: the A and B tiles' staging,
// off the stack (the first thread is the JVM's, whose stack a native frame should not take 64 KiB of).
void steer_amx_out_prod_rows16(int64_t ncols, int64_t nb, const float * w, const char * s1, size_t nb10, size_t nb11,
                               float * d, size_t dstride, int64_t nrows, void * scratch) {
    uint16_t * a = (uint16_t *) scratch;                       // GROUPS * 2 * ROWS * K
    uint16_t * b_hi = a + GROUPS * 2 * ROWS * K;               // K / 2 * 2 * CHUNK
    uint16_t * b_lo = b_hi + K / 2 * 2 * CHUNK;                // K / 2 * 2 * CHUNK
    const size_t bstride = 2 * CHUNK * sizeof(uint16_t);  // bytes from one pair of weight rows to the next
    const size_t cstride = dstride * sizeof(float);
    int configured = 0;  // the rows the tiles are configured for
    for (int64_t r0 = 0; r0 < nrows; r0 += GROUPS * ROWS) {
        const int64_t rn = nrows - r0 < GROUPS * ROWS ? nrows - r0 : GROUPS * ROWS;
        const int64_t groups = (rn + ROWS - 1) / ROWS;
        // The gradient's rows as A tiles (hi, lo) for every column: per group 16 rows of 32 BF16, zeros past nb
        for (int64_t j = 0; j < groups * ROWS; ++j) {
            const char * row = s1 + (size_t) (r0 + j) * nb10;
            __m512 c0 = _mm512_setzero_ps(), c1 = _mm512_setzero_ps();
            if (j < rn && nb11 == sizeof(float)) {  // a row's terms side by side (the transposed gradient, as a backward has it)
                c0 = _mm512_maskz_loadu_ps((__mmask16) (nb >= 16 ? 0xffff : (1u << nb) - 1), row);
                c1 = _mm512_maskz_loadu_ps((__mmask16) (nb >= 32 ? 0xffff : nb > 16 ? (1u << (nb - 16)) - 1 : 0), row + 16 * sizeof(float));
            } else if (j < rn) {
                float c[K] __attribute__((aligned(64)));
                for (int64_t k = 0; k < K; ++k) {
                    c[k] = k < nb ? *(const float *) (row + (size_t) k * nb11) : 0.0f;
                }
                c0 = _mm512_load_ps(c);
                c1 = _mm512_load_ps(c + 16);
            }
            __m512bh hi, lo;
            split(c0, c1, &hi, &lo);
            uint16_t * g = a + (size_t) (j / ROWS) * 2 * ROWS * K;
            _mm512_store_si512((__m512i *) (g + (j % ROWS) * K), (__m512i) hi);
            _mm512_store_si512((__m512i *) (g + ROWS * K + (j % ROWS) * K), (__m512i) lo);
        }
        for (int64_t n0 = 0; n0 < ncols; n0 += CHUNK) {
            const int64_t n = ncols - n0 < CHUNK ? ncols - n0 : CHUNK;
            pack_weights(ncols, nb, w, n0, n, b_hi, b_lo);
            for (int64_t g = 0; g < groups; ++g) {
                const int rows = g == groups - 1 && rn % ROWS ? (int) (rn % ROWS) : ROWS;
                if (rows != configured) {  // the last group's rows alone, if fewer: C tiles may not reach past dst
                    configure(rows);
                    configured = rows;
                }
                const uint16_t * ag = a + (size_t) g * 2 * ROWS * K;
                _tile_loadd(2, ag, K * sizeof(uint16_t));
                _tile_loadd(3, ag + ROWS * K, K * sizeof(uint16_t));
                float * dg = d + (size_t) (r0 + g * ROWS) * dstride + n0;
                for (int64_t i = 0; i < n; i += 32) {
                    _tile_loadd(0, dg + i, cstride);
                    _tile_loadd(1, dg + i + 16, cstride);
                    _tile_loadd(4, b_hi + 2 * i, bstride);
                    _tile_loadd(5, b_lo + 2 * i, bstride);
                    _tile_loadd(6, b_hi + 2 * (i + 16), bstride);
                    _tile_loadd(7, b_lo + 2 * (i + 16), bstride);
                    _tile_dpbf16ps(0, 2, 4);
                    _tile_dpbf16ps(0, 2, 5);
                    _tile_dpbf16ps(0, 3, 4);
                    _tile_dpbf16ps(1, 2, 6);
                    _tile_dpbf16ps(1, 2, 7);
                    _tile_dpbf16ps(1, 3, 6);
                    _tile_stored(0, dg + i, cstride);
                    _tile_stored(1, dg + i + 16, cstride);
                }
            }
        }
    }
    _tile_release();
}

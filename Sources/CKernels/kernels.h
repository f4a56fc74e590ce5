// Small CPU intrinsics the Swift kernels need and Swift does not expose: a spin-wait hint, a prefetch, and the 8-lane
// widening of 16-bit floats (F16C's vcvtph2ps; AVX2's zero-extend and shift for bfloat16). Static inline,
// so the Swift optimiser inlines them; release builds pass -mavx2 -mfma -mf16c to the clang importer, and
// other builds get the portable bit-level versions.
#ifndef LANCET_KERNELS_H
#define LANCET_KERNELS_H
#include <stdint.h>
#include <string.h>
#if defined(__x86_64__) && (defined(__F16C__) || defined(__AVX2__))
#include <immintrin.h>
#endif

/// Eight Floats, imported into Swift as SIMD8<Float>.
typedef float lancet_float8 __attribute__((ext_vector_type(8)));

/// A hint that the thread is spinning (x86 `pause`; nothing elsewhere).
static inline void lancet_spin_pause(void) {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#endif
}

/// A hint to bring the cache line holding `p` closer for a read soon (nothing where the compiler has no prefetch).
static inline void lancet_prefetch(const void *p) {
#if defined(__GNUC__) || defined(__clang__)
    __builtin_prefetch(p, 0, 3);
#endif
}

/// IEEE binary16 bits to Float, exactly (subnormals, infinities and NaN included).
static inline float lancet_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exponent = (h >> 10) & 0x1F, mantissa = h & 0x3FF, bits;
    if (exponent == 0x1F) {
        bits = sign | 0x7F800000 | (mantissa << 13);
    } else if (exponent != 0) {
        bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
    } else if (mantissa == 0) {
        bits = sign;
    } else {  // subnormal: mantissa · 2^-24, exact in Float
        float f = (float)mantissa * 5.9604644775390625e-8f;
        memcpy(&bits, &f, 4);
        bits |= sign;
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/// Eight binary16 values at `p` widened to Float.
static inline lancet_float8 lancet_f16x8_to_f32(const uint16_t *p) {
#if defined(__x86_64__) && defined(__F16C__)
    return (lancet_float8)_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
#else
    lancet_float8 r;
    for (int i = 0; i < 8; i++) r[i] = lancet_f16_to_f32(p[i]);
    return r;
#endif
}

/// Eight bfloat16 values at `p` widened to Float (each the upper half of its Float).
static inline lancet_float8 lancet_bf16x8_to_f32(const uint16_t *p) {
#if defined(__x86_64__) && defined(__AVX2__)
    return (lancet_float8)_mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
#else
    lancet_float8 r;
    for (int i = 0; i < 8; i++) {
        uint32_t bits = (uint32_t)p[i] << 16;
        float f;
        memcpy(&f, &bits, 4);
        r[i] = f;
    }
    return r;
#endif
}

#endif

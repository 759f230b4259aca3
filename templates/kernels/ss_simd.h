/* 2 x 16-bit SIMD primitives of the Armv7E-M / Armv8-M DSP extension (SXTB16, SMLAD), used by
 * the optimized inner loops. On cores with the extension (M4, M7, M33) they are single
 * instructions; elsewhere (the host) a portable C emulation with identical results stands in,
 * so the host tests run the very same algorithm. SS_SIMD selects the inner loops:
 *   1: packed (four int8 per 32-bit load, two MACs per SMLAD) - default on DSP cores and hosts;
 *   0: the plain scalar loops (reference) - default on Cortex-M0/M0+/M3; force with -DSS_SIMD=0.
 * Integer sums are exact, so both give the same bytes. */
#ifndef SS_SIMD_H
#define SS_SIMD_H

#include <stdint.h>
#include <string.h>

#ifndef SS_SIMD
#if defined(__ARM_FEATURE_DSP) || !defined(__arm__)
#define SS_SIMD 1
#else
#define SS_SIMD 0
#endif
#endif

#if SS_SIMD && defined(__arm__) && !defined(__ARM_FEATURE_DSP)
#error "SS_SIMD=1 needs the DSP extension on Arm (Cortex-M4/M7/M33)"
#endif

/* Four bytes from any address (compiles to one LDR where unaligned access is allowed). */
static inline uint32_t ss_read4(const int8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

#if defined(__ARM_FEATURE_DSP)
/* bytes 0 and 2, sign-extended to halfwords */
static inline uint32_t ss_sxtb16(uint32_t x) {
    uint32_t r;
    __asm__("sxtb16 %0, %1" : "=r"(r) : "r"(x));
    return r;
}
/* bytes 1 and 3, sign-extended to halfwords */
static inline uint32_t ss_sxtb16_ror8(uint32_t x) {
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}
/* acc + lo(a) * lo(b) + hi(a) * hi(b), signed halfwords (wraps like int32 addition) */
static inline int32_t ss_smlad(uint32_t a, uint32_t b, int32_t acc) {
    int32_t r;
    __asm__("smlad %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
    return r;
}
/* acc + lo(a) * lo(b) */
static inline int32_t ss_smlabb(uint32_t a, uint32_t b, int32_t acc) {
    int32_t r;
    __asm__("smlabb %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
    return r;
}
/* acc + hi(a) * hi(b) */
static inline int32_t ss_smlatt(uint32_t a, uint32_t b, int32_t acc) {
    int32_t r;
    __asm__("smlatt %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
    return r;
}
/* acc + lo(a) * hi(b) */
static inline int32_t ss_smlabt(uint32_t a, uint32_t b, int32_t acc) {
    int32_t r;
    __asm__("smlabt %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
    return r;
}
/* halfword-wise a + b (wrapping) */
static inline uint32_t ss_sadd16(uint32_t a, uint32_t b) {
    uint32_t r;
    __asm__("sadd16 %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
}
#else
static inline uint32_t ss_sxtb16(uint32_t x) {
    const uint32_t lo = (uint32_t)(uint16_t)(int16_t)(int8_t)(x & 0xFFu);
    const uint32_t hi = (uint32_t)(uint16_t)(int16_t)(int8_t)((x >> 16) & 0xFFu);
    return lo | (hi << 16);
}
static inline uint32_t ss_sxtb16_ror8(uint32_t x) {
    return ss_sxtb16((x >> 8) | (x << 24));
}
static inline int32_t ss_smlad(uint32_t a, uint32_t b, int32_t acc) {
    const int32_t p0 = (int32_t)(int16_t)(a & 0xFFFFu) * (int32_t)(int16_t)(b & 0xFFFFu);
    const int32_t p1 = (int32_t)(int16_t)(a >> 16) * (int32_t)(int16_t)(b >> 16);
    return (int32_t)((uint32_t)acc + (uint32_t)p0 + (uint32_t)p1);
}
static inline int32_t ss_smlabb(uint32_t a, uint32_t b, int32_t acc) {
    const int32_t p = (int32_t)(int16_t)(a & 0xFFFFu) * (int32_t)(int16_t)(b & 0xFFFFu);
    return (int32_t)((uint32_t)acc + (uint32_t)p);
}
static inline int32_t ss_smlatt(uint32_t a, uint32_t b, int32_t acc) {
    const int32_t p = (int32_t)(int16_t)(a >> 16) * (int32_t)(int16_t)(b >> 16);
    return (int32_t)((uint32_t)acc + (uint32_t)p);
}
static inline int32_t ss_smlabt(uint32_t a, uint32_t b, int32_t acc) {
    const int32_t p = (int32_t)(int16_t)(a & 0xFFFFu) * (int32_t)(int16_t)(b >> 16);
    return (int32_t)((uint32_t)acc + (uint32_t)p);
}
static inline uint32_t ss_sadd16(uint32_t a, uint32_t b) {
    const uint32_t lo = (a + b) & 0xFFFFu;
    const uint32_t hi = ((a >> 16) + (b >> 16)) & 0xFFFFu;
    return lo | (hi << 16);
}
#endif

#endif

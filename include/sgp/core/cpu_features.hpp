#pragma once
// What the running CPU can execute, asked at run time: a build with -march=x86-64 (or for an
// older machine) must still find AVX512-BF16 and AMX where they exist, and a build made on a
// machine that has them must not execute them (SIGILL) where they do not.
#include <cstdint>

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#endif

namespace sgp::cpu {

#if defined(__x86_64__) && defined(__GNUC__)
namespace detail {
struct leaf7 {
    unsigned ebx = 0, ecx = 0, edx = 0, eax1 = 0;  // subleaf 0, and subleaf 1's eax
};
inline leaf7 read_leaf7() {
    leaf7 r;
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (__get_cpuid_max(0, nullptr) < 7) return r;
    __cpuid_count(7, 0, a, b, c, d);
    r.ebx = b, r.ecx = c, r.edx = d;
    if (a >= 1) {  // subleaf 0's eax: the highest subleaf
        __cpuid_count(7, 1, a, b, c, d);
        r.eax1 = a;
    }
    return r;
}
// The register state the OS saves on a context switch (XCR0): a unit whose state the OS does
// not save must not be used, whatever cpuid says.
inline std::uint64_t xcr0() {
    unsigned a = 0, b = 0, c = 0, d = 0;
    __cpuid(1, a, b, c, d);
    if (!(c & (1u << 27))) return 0;  // no OSXSAVE
    std::uint32_t lo = 0, hi = 0;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (static_cast<std::uint64_t>(hi) << 32) | lo;
}
inline bool os_saves_avx512() {
    return (xcr0() & 0xe6) == 0xe6;  // SSE, AVX, opmask, ZMM0-15 upper halves, ZMM16-31
}
// Linux hands out the 8 KiB of AMX tile state per process on request (arch_prctl,
// ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA, kernel 5.16 and later); without the grant the
// first tile instruction kills the process.
// Elsewhere than Linux the grant is not known how to ask for: no AMX.
inline bool request_amx_permission() {
#if defined(__linux__)
    constexpr long arch_req_xcomp_perm = 0x1023, xfeature_xtiledata = 18;
    return syscall(SYS_arch_prctl, arch_req_xcomp_perm, xfeature_xtiledata) == 0;
#else
    return false;
#endif
}
}  // namespace detail

// AVX-512F with the BF16 dot product (vdpbf16ps): Cooper Lake, Sapphire Rapids, Zen 4 and 5.
inline bool has_avx512_bf16() {
    static const bool yes = [] {
        const auto l = detail::read_leaf7();
        const bool f = l.ebx & (1u << 16), bw = l.ebx & (1u << 30), bf16 = l.eax1 & (1u << 5);
        return f && bw && bf16 && detail::os_saves_avx512();
    }();
    return yes;
}
// AMX tiles with the BF16 tile product (tdpbf16ps), with the OS's permission granted: Sapphire
// Rapids and later Xeons.
inline bool has_amx_bf16() {
    static const bool yes = [] {
        const auto l = detail::read_leaf7();
        const bool tile = l.edx & (1u << 24), bf16 = l.edx & (1u << 22);
        if (!tile || !bf16 || !has_avx512_bf16()) return false;
        if ((detail::xcr0() & 0x60000) != 0x60000) return false;  // XTILECFG, XTILEDATA
        return detail::request_amx_permission();
    }();
    return yes;
}
#else
inline bool has_avx512_bf16() {
    return false;
}
inline bool has_amx_bf16() {
    return false;
}
#endif

}  // namespace sgp::cpu

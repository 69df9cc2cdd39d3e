#pragma once
// Depthwise 2-d convolution (PyTorch's Conv2d with groups = channels, one filter per channel)
// on channel-major activations [C][N][H][W], weights [C][1][K][K], any stride, zero padding.
//
// Each (channel, image) plane is copied into a zero-padded map split into stride^2 phases:
// phase (py, px) holds padded pixel (r * S + py, j * S + px) at r * L + j. Output pixel
// (oy, ox) is position q = oy * L + ox, and its tap (ky, kx) is position
// q + (ky / S) * L + kx / S of phase (ky % S, kx % S): for every stride the taps of
// consecutive outputs are consecutive floats, so a run of outputs costs one vector load per
// tap. With stride 1 the one phase is the padded map itself.
//
// Backward data gathers instead of scattering: padded pixel q of phase (py, px) collects taps
// (py + a S, px + b S) from output position q - a L - b. The output gradient sits in a zeroed
// map with a margin in front and L - Ow >= (K - 1) / S zero columns per row, so every output
// out of range reads a zero. Backward weights is a dot product per tap over the same maps.
//
// Kernels 3, 5, 7 with strides 1, 2 run unrolled with the weights in registers; any other
// kernel or stride runs a tap-by-tap loop over the same layout.
#include <algorithm>
#include <cstddef>
#include <cstring>
#include <type_traits>

#include "sgp/core/parallel.hpp"
#include "sgp/core/simd.hpp"
#include "sgp/kernels/copy.hpp"
#include "sgp/kernels/direct_conv.hpp"

namespace sgp::kernels {

namespace depthwise_detail {
constexpr std::size_t round_up(std::size_t x, std::size_t m) {
    return (x + m - 1) / m * m;
}
}  // namespace depthwise_detail

// Requires k >= 1, stride >= 1 and h + 2 pad >= k, w + 2 pad >= k; make_depthwise_geometry
// fills oh and ow.
struct depthwise_geometry {
    std::size_t n, c, h, w;      // batch, channels, input map
    std::size_t k, stride, pad;  // square kernel, stride, zero padding
    std::size_t oh, ow;          // output map: (h + 2 pad - k) / stride + 1

    std::size_t hp() const { return h + 2 * pad; }
    std::size_t wp() const { return w + 2 * pad; }
    // Rows of a phase, and its row stride L (room for every phase column and for the zero
    // columns backward data reads past each output row).
    std::size_t phase_rows() const { return (hp() + stride - 1) / stride; }
    std::size_t row() const { return std::max((wp() + stride - 1) / stride, ow + (k - 1) / stride); }
    // Floats per phase: its rows, plus the reach of the farthest tap of the last vector.
    std::size_t phase_floats() const {
        return depthwise_detail::round_up(phase_rows() * row() + (k - 1) / stride + simd::width, simd::width);
    }
    // Zeros in front of the output map: the farthest backward reach of a tap.
    std::size_t margin() const { return (k - 1) / stride * (row() + 1); }
    // The output map (its rows at margin() + oy * L), up to the last row backward data reads.
    std::size_t out_floats() const {
        return depthwise_detail::round_up(margin() + phase_rows() * row() + simd::width, simd::width);
    }
    // One thread's scratch: the phases, the output map, and k * k doubles (as 2 floats each)
    // for backward weights; a multiple of 16 floats so threads share no cache line.
    std::size_t slot_floats() const {
        return depthwise_detail::round_up(stride * stride * phase_floats() + out_floats() + 2 * k * k, 16);
    }
};

inline depthwise_geometry make_depthwise_geometry(std::size_t n, std::size_t c, std::size_t h, std::size_t w,
                                                  std::size_t k, std::size_t stride, std::size_t pad) {
    return {n, c, h, w, k, stride, pad, (h + 2 * pad - k) / stride + 1, (w + 2 * pad - k) / stride + 1};
}

// Scratch floats for depthwise_forward / _backward_data / _backward_weights run with `threads`
// threads (pass pool ? pool->size() : 1). Any alignment; contents need not be kept between calls.
inline std::size_t depthwise_scratch_floats(const depthwise_geometry& g, std::size_t threads) {
    return std::max<std::size_t>(1, threads) * g.slot_floats();
}

namespace depthwise_detail {

using simd::vec;
inline constexpr std::size_t W = simd::width;
// Vectors of positions per float partial sum in backward weights, before it goes into a
// double: keeps the float error of a partial sum at that of 64 terms per lane.
inline constexpr std::size_t block = 64;

template <std::size_t V>
using constant = std::integral_constant<std::size_t, V>;

// The layout of one call, worked out once (its divisions are not per row). Kernel K and
// stride S fixed at compile time, or both 0 (read from the geometry).
template <std::size_t K, std::size_t S>
struct plan {
    std::size_t k_, s_, pad, h, w, oh, ow;
    std::size_t L, ps, hq, margin, map, slot;  // see depthwise_geometry
    explicit plan(const depthwise_geometry& g)
        : k_(g.k),
          s_(g.stride),
          pad(g.pad),
          h(g.h),
          w(g.w),
          oh(g.oh),
          ow(g.ow),
          L(g.row()),
          ps(g.phase_floats()),
          hq(g.phase_rows()),
          margin(g.margin()),
          map(g.out_floats()),
          slot(g.slot_floats()) {}
    std::size_t k() const {
        if constexpr (K != 0) return K;
        return k_;
    }
    std::size_t s() const {
        if constexpr (S != 0) return S;
        return s_;
    }
    std::size_t phases() const { return s() * s() * ps; }
    // Where tap (ky, kx) of output position q is: q + at(ky, kx) in the phases.
    std::size_t at(std::size_t ky, std::size_t kx) const {
        return ((ky % s()) * s() + kx % s()) * ps + ky / s() * L + kx / s();
    }
    // Padded row y + pad in the phases. Its padded column i + pad is in phase column
    // (i + pad) % S, at (i + pad) / S.
    std::size_t phase_row(std::size_t y) const {
        const std::size_t yy = y + pad;
        return yy % s() * s() * ps + yy / s() * L;
    }
};

// Runs f(slot, begin, end) over a split of [0, units) into one range per thread; slot numbers
// the thread's scratch.
template <class F>
void by_slot(thread_pool* pool, std::size_t units, F&& f) {
    const std::size_t t = std::min<std::size_t>(pool ? pool->size() : 1, units);
    parallel_for(pool, t, 1, [&](std::size_t s0, std::size_t s1) {
        for (std::size_t s = s0; s < s1; ++s) f(s, units * s / t, units * (s + 1) / t);
    });
}

// The pixels of plane x (h x w) into the phases, whose padding stays zero from the caller.
template <std::size_t K, std::size_t S>
void fill_phases(const plan<K, S>& t, const float* x, float* sub) {
    const std::size_t s = t.s(), p = t.pad;
    for (std::size_t y = 0; y < t.h; ++y, x += t.w) {
        float* r = sub + t.phase_row(y);
        if (s == 1) {
            detail::copy_short(x, t.w, r + p);
            continue;
        }
        // Every s-th column, from the first that falls in phase column px.
        for (std::size_t px = 0; px < s; ++px) {
            const std::size_t i0 = (px + s - p % s) % s;
            float* dst = r + px * t.ps + (i0 + p) / s;
            for (std::size_t i = i0; i < t.w; i += s) *dst++ = x[i];
        }
    }
}

// The inverse: plane dx (h x w) from the phases, dropping the padding.
template <std::size_t K, std::size_t S>
void read_phases(const plan<K, S>& t, const float* sub, float* dx) {
    const std::size_t s = t.s(), p = t.pad;
    for (std::size_t y = 0; y < t.h; ++y, dx += t.w) {
        const float* r = sub + t.phase_row(y);
        if (s == 1) {
            detail::copy_short(r + p, t.w, dx);
            continue;
        }
        for (std::size_t px = 0; px < s; ++px) {
            const std::size_t i0 = (px + s - p % s) % s;
            const float* src = r + px * t.ps + (i0 + p) / s;
            for (std::size_t i = i0; i < t.w; i += s) dx[i] = *src++;
        }
    }
}

// Plane dy (oh x ow) into the output map's rows; the rest of the map stays zero.
template <std::size_t K, std::size_t S>
void fill_outputs(const plan<K, S>& t, const float* dy, float* map) {
    for (std::size_t y = 0; y < t.oh; ++y) detail::copy_short(dy + y * t.ow, t.ow, map + y * t.L);
}

// v into y[o, o + n) of a plane of len floats, n <= W. A whole vector while the plane has
// room: its lanes past n land on the rows after, written later. The plane's last ragged
// vector goes through a buffer (what follows the plane may be another thread's).
inline void store_row_part(vec v, float* y, std::size_t o, std::size_t n, std::size_t len) {
    if (o + W <= len) {
        v.store_unaligned(y + o);
        return;
    }
    alignas(64) float part[W];
    v.store_unaligned(part);
    std::copy(part, part + n, y + o);
}

// Output rows from the position domain (row stride L) through the epilogue. src has W floats
// of room past its last row.
template <std::size_t K, std::size_t S>
void epilogue_rows(const plan<K, S>& t, const float* src, float* y, const conv_epilogue::channel& f) {
    const std::size_t len = t.oh * t.ow;
    for (std::size_t r = 0, o = 0; r < t.oh; ++r, src += t.L, o += t.ow)
        for (std::size_t i = 0; i < t.ow; i += W)
            store_row_part(f(vec::load_unaligned(src + i)), y, o + i, std::min(W, t.ow - i), len);
}

// The forward sum of the W positions from q. Two chains of FMAs: half the latency per vector.
template <std::size_t K, std::size_t S>
inline vec forward_at(const plan<K, S>& t, const float* sub, const vec* wb, std::size_t q) {
    vec a0(0.f), a1(0.f);
    SGP_UNROLL(7)
    for (std::size_t ky = 0; ky < K; ++ky) {
        SGP_UNROLL(7)
        for (std::size_t kx = 0; kx < K; ++kx) {
            const vec v = vec::load_unaligned(sub + t.at(ky, kx) + q);
            if ((ky * K + kx) % 2 == 0)
                a0 = simd::fma(wb[ky * K + kx], v, a0);
            else
                a1 = simd::fma(wb[ky * K + kx], v, a1);
        }
    }
    return a0 + a1;
}

// One output plane y (oh x ow) of filter w from the phases. buf: room for oh * L positions
// and a vector.
template <std::size_t K, std::size_t S>
void forward_plane(const plan<K, S>& t, const float* sub, const float* w, float* buf, float* y,
                   const conv_epilogue::channel& f, bool by_rows) {
    const std::size_t L = t.L, end = t.oh * L;
    if constexpr (K == 0) {
        // Tap by tap over every position, then the epilogue.
        const std::size_t k = t.k();
        std::fill_n(buf, round_up(end, W), 0.f);
        for (std::size_t ky = 0; ky < k; ++ky)
            for (std::size_t kx = 0; kx < k; ++kx) {
                const float* src = sub + t.at(ky, kx);
                const vec wv(w[ky * k + kx]);
                for (std::size_t q = 0; q < end; q += W)
                    simd::fma(wv, vec::load_unaligned(src + q), vec::load_unaligned(buf + q)).store_unaligned(buf + q);
            }
        epilogue_rows(t, buf, y, f);
    } else {
        vec wb[K * K];
        for (std::size_t i = 0; i < K * K; ++i) wb[i] = vec(w[i]);
        if (by_rows) {
            // Vectors along each row, the epilogue in registers.
            const std::size_t len = t.oh * t.ow;
            for (std::size_t r = 0, o = 0; r < t.oh; ++r, o += t.ow)
                for (std::size_t i = 0; i < t.ow; i += W)
                    store_row_part(f(forward_at(t, sub, wb, r * L + i)), y, o + i, std::min(W, t.ow - i), len);
        } else {
            // Narrow rows: vectors over the whole position domain, the L - Ow extra columns
            // of each row computed and dropped.
            for (std::size_t q = 0; q < end; q += W) forward_at(t, sub, wb, q).store_unaligned(buf + q);
            epilogue_rows(t, buf, y, f);
        }
    }
}

// Phase pixels of plane dx from the output gradient map (dy0: its position 0, past the margin).
template <std::size_t K, std::size_t S>
void gather_plane(const plan<K, S>& t, const float* dy0, const float* w, float* sub) {
    const std::size_t L = t.L, end = t.hq * L;
    if constexpr (K == 0) {
        const std::size_t s = t.s(), k = t.k();
        std::fill_n(sub, t.phases(), 0.f);
        for (std::size_t ky = 0; ky < k; ++ky)
            for (std::size_t kx = 0; kx < k; ++kx) {
                float* dst = sub + (ky % s * s + kx % s) * t.ps;
                const float* src = dy0 - (ky / s * L + kx / s);
                const vec wv(w[ky * k + kx]);
                for (std::size_t q = 0; q < end; q += W)
                    simd::fma(wv, vec::load_unaligned(src + q), vec::load_unaligned(dst + q)).store_unaligned(dst + q);
            }
    } else {
        vec wb[K * K];
        for (std::size_t i = 0; i < K * K; ++i) wb[i] = vec(w[i]);
        for (std::size_t py = 0; py < S; ++py)
            for (std::size_t px = 0; px < S; ++px) {
                float* dst = sub + (py * S + px) * t.ps;
                for (std::size_t q = 0; q < end; q += W) {
                    vec a0(0.f), a1(0.f);
                    SGP_UNROLL(7)
                    for (std::size_t a = 0; py + a * S < K; ++a) {
                        SGP_UNROLL(7)
                        for (std::size_t b = 0; px + b * S < K; ++b) {
                            const std::size_t ky = py + a * S, kx = px + b * S;
                            const vec v = vec::load_unaligned(dy0 - (a * L + b) + q);
                            if ((a + b) % 2 == 0)
                                a0 = simd::fma(wb[ky * K + kx], v, a0);
                            else
                                a1 = simd::fma(wb[ky * K + kx], v, a1);
                        }
                    }
                    (a0 + a1).store_unaligned(dst + q);
                }
            }
    }
}

// Adds v to sums[i]: k * k doubles held in float scratch, copied in and out (the storage is
// float).
inline void add_sum(float* sums, std::size_t i, double v) {
    double d;
    std::memcpy(&d, sums + 2 * i, sizeof d);
    d += v;
    std::memcpy(sums + 2 * i, &d, sizeof d);
}

// Adds to sums[i] the dot product of tap i with the output gradient map over one plane.
template <std::size_t K, std::size_t S>
void weight_sums(const plan<K, S>& t, const float* sub, const float* dy0, float* sums) {
    // The positions of the output rows: the zero columns past each row (and the zeros after
    // the last) cancel the taps read there.
    const std::size_t end = t.oh * t.L;
    if constexpr (K == 0) {
        const std::size_t k = t.k();
        for (std::size_t ky = 0; ky < k; ++ky)
            for (std::size_t kx = 0; kx < k; ++kx) {
                const float* src = sub + t.at(ky, kx);
                for (std::size_t q0 = 0; q0 < end; q0 += block * W) {
                    const std::size_t q1 = std::min(end, q0 + block * W);
                    vec acc(0.f);
                    for (std::size_t q = q0; q < q1; q += W)
                        acc = simd::fma(vec::load_unaligned(src + q), vec::load_unaligned(dy0 + q), acc);
                    add_sum(sums, ky * k + kx, simd::hadd(acc));
                }
            }
    } else {
        for (std::size_t q0 = 0; q0 < end; q0 += block * W) {
            const std::size_t q1 = std::min(end, q0 + block * W);
            vec acc[K * K];
            for (auto& a : acc) a = vec(0.f);
            for (std::size_t q = q0; q < q1; q += W) {
                const vec d = vec::load_unaligned(dy0 + q);
                SGP_UNROLL(7)
                for (std::size_t ky = 0; ky < K; ++ky) {
                    SGP_UNROLL(7)
                    for (std::size_t kx = 0; kx < K; ++kx)
                        acc[ky * K + kx] = simd::fma(vec::load_unaligned(sub + t.at(ky, kx) + q), d, acc[ky * K + kx]);
                }
            }
            for (std::size_t i = 0; i < K * K; ++i) add_sum(sums, i, simd::hadd(acc[i]));
        }
    }
}

// Calls f(constant<K>, constant<S>) with the compiled kernel and stride, or (0, 0).
template <class F>
void dispatch(const depthwise_geometry& g, F&& f) {
    auto with_k = [&](auto s) {
        switch (g.k) {
            case 3:
                return f(constant<3>{}, s);
            case 5:
                return f(constant<5>{}, s);
            case 7:
                return f(constant<7>{}, s);
            default:
                return f(constant<0>{}, constant<0>{});
        }
    };
    if (g.stride == 1)
        with_k(constant<1>{});
    else if (g.stride == 2)
        with_k(constant<2>{});
    else
        f(constant<0>{}, constant<0>{});
}

template <std::size_t K, std::size_t S>
void forward(const depthwise_geometry& g, const float* x, const float* w, float* y, const conv_epilogue& e,
             float* scratch, thread_pool* pool) {
    const plan<K, S> t(g);
    const std::size_t in = g.h * g.w, out = g.oh * g.ow, kk = g.k * g.k;
    // Row by row (no extra pass, no dropped columns) unless the ragged ends of narrow rows
    // waste more than an eighth over the position domain.
    const std::size_t row_vectors = g.oh * ((g.ow + W - 1) / W), flat_vectors = (g.oh * t.L + W - 1) / W;
    const bool by_rows = 8 * row_vectors <= 9 * flat_vectors;
    by_slot(pool, g.c * g.n, [&](std::size_t slot, std::size_t u0, std::size_t u1) {
        float* sub = scratch + slot * t.slot;
        float* buf = sub + t.phases();
        std::fill_n(sub, t.phases(), 0.f);
        for (std::size_t u = u0; u < u1; ++u) {
            const std::size_t c = u / g.n;
            fill_phases(t, x + u * in, sub);
            forward_plane(t, sub, w + c * kk, buf, y + u * out, e.of(c), by_rows);
        }
    });
}

template <std::size_t K, std::size_t S>
void backward_data(const depthwise_geometry& g, const float* dy, const float* w, float* dx, float* scratch,
                   thread_pool* pool) {
    const plan<K, S> t(g);
    const std::size_t in = g.h * g.w, out = g.oh * g.ow, kk = g.k * g.k;
    by_slot(pool, g.c * g.n, [&](std::size_t slot, std::size_t u0, std::size_t u1) {
        float* sub = scratch + slot * t.slot;
        float* map = sub + t.phases();
        std::fill_n(map, t.map, 0.f);
        for (std::size_t u = u0; u < u1; ++u) {
            fill_outputs(t, dy + u * out, map + t.margin);
            gather_plane(t, map + t.margin, w + u / g.n * kk, sub);
            read_phases(t, sub, dx + u * in);
        }
    });
}

template <std::size_t K, std::size_t S>
void backward_weights(const depthwise_geometry& g, const float* x, const float* dy, float* dw, float* scratch,
                      thread_pool* pool) {
    const plan<K, S> t(g);
    const std::size_t in = g.h * g.w, out = g.oh * g.ow, kk = g.k * g.k;
    // By channel: each weight's sum over the batch stays in one thread, in one order.
    by_slot(pool, g.c, [&](std::size_t slot, std::size_t c0, std::size_t c1) {
        float* sub = scratch + slot * t.slot;
        float* map = sub + t.phases();
        float* sums = map + t.map;
        std::fill_n(sub, t.phases(), 0.f);
        std::fill_n(map, t.map, 0.f);
        for (std::size_t c = c0; c < c1; ++c) {
            std::fill_n(sums, 2 * kk, 0.f);  // all zero bytes: the doubles are 0.0
            for (std::size_t n = 0; n < g.n; ++n) {
                const std::size_t u = c * g.n + n;
                fill_phases(t, x + u * in, sub);
                fill_outputs(t, dy + u * out, map + t.margin);
                weight_sums(t, sub, map + t.margin, sums);
            }
            for (std::size_t i = 0; i < kk; ++i) {
                double d;
                std::memcpy(&d, sums + 2 * i, sizeof d);
                dw[c * kk + i] = static_cast<float>(d);
            }
        }
    });
}

}  // namespace depthwise_detail

// y[C][N][Oh][Ow] = epilogue(depthwise conv of x[C][N][H][W] with w[C][1][K][K]); the
// epilogue of channel c (bias, scale/shift, relu or relu6) as each value is written. scratch:
// depthwise_scratch_floats(g, pool ? pool->size() : 1) floats.
inline void depthwise_forward(const depthwise_geometry& g, const float* x, const float* w, float* y,
                              const conv_epilogue& e, float* scratch, thread_pool* pool) {
    depthwise_detail::dispatch(g, [&](auto k, auto s) {
        depthwise_detail::forward<decltype(k)::value, decltype(s)::value>(g, x, w, y, e, scratch, pool);
    });
}

// dx[C][N][H][W] (overwritten) = the gradient of the input for output gradient dy[C][N][Oh][Ow].
inline void depthwise_backward_data(const depthwise_geometry& g, const float* dy, const float* w, float* dx,
                                    float* scratch, thread_pool* pool) {
    depthwise_detail::dispatch(g, [&](auto k, auto s) {
        depthwise_detail::backward_data<decltype(k)::value, decltype(s)::value>(g, dy, w, dx, scratch, pool);
    });
}

// dw[C][1][K][K] (overwritten) = the gradient of the weights: per weight, float partial sums
// of at most 64 terms a lane, added in double. An infinite x may give NaN where the exact sum
// is infinite (dropped positions multiply it by a zero gradient): non-finite either way.
inline void depthwise_backward_weights(const depthwise_geometry& g, const float* x, const float* dy, float* dw,
                                       float* scratch, thread_pool* pool) {
    depthwise_detail::dispatch(g, [&](auto k, auto s) {
        depthwise_detail::backward_weights<decltype(k)::value, decltype(s)::value>(g, x, dy, dw, scratch, pool);
    });
}

}  // namespace sgp::kernels

// .npy arrays (in memory), and every conversion sgp makes from them.
#include "fuzz.hpp"
#include "sgp/io/npy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    return sgp_fuzz::refuse_or_pass([&] {
        const auto a = sgp::npy_decode(sgp_fuzz::bytes(data, size), "fuzz.npy");
        sgp_fuzz::refuse_or_pass([&] { a.to_floats("fuzz.npy"); });
        sgp_fuzz::refuse_or_pass([&] { a.to_int64("fuzz.npy"); });
        sgp_fuzz::refuse_or_pass([&] { a.to_indices("fuzz.npy"); });
        // What sgp reads it writes back identically.
        if (sgp::npy_decode(sgp::npy_encode(a), "again").data != a.data) __builtin_trap();
    });
}

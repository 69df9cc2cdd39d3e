// .npz archives (in memory), stored and deflated entries, zip64 records.
#include "fuzz.hpp"
#include "sgp/io/npz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    return sgp_fuzz::refuse_or_pass([&] { sgp::npz_decode(sgp_fuzz::bytes(data, size), "fuzz.npz"); });
}

// JSON text through parse_json; what parses must write back (dump) and parse again equally.
#include "fuzz.hpp"
#include "sgp/io/json_reader.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    return sgp_fuzz::refuse_or_pass([&] {
        const auto v = sgp::parse_json(sgp_fuzz::bytes(data, size), "fuzz.json");
        const std::string once = sgp::dump(v);
        if (sgp::dump(sgp::parse_json(once, "again")) != once) __builtin_trap();  // outside refuse: a bug
        if (v.kind == sgp::json_value::type::number) sgp_fuzz::refuse_or_pass([&] { v.index("n"); });
    });
}

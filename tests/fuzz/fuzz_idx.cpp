// IDX files, plain and gzip-compressed, through read_idx and the loader. The first byte picks
// the mode: odd = gzip-compress the rest first (mutations reach the IDX structure under the
// compression); even = the rest as the file's bytes (mutations reach zlib's gzip parsing).
#include <algorithm>
#include <vector>

#include "fuzz.hpp"
#include "sgp/data/idx.hpp"
#include "sgp/data/loader.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    std::string body(sgp_fuzz::bytes(data + 1, size - 1));
    if (data[0] & 1) body = sgp_fuzz::gzip(body);
    const auto path = sgp_fuzz::write_temp(body, "idx");
    return sgp_fuzz::refuse_or_pass([&] {
        auto a = sgp::read_idx(path);
        if (a.dims.size() != 3 || a.dims[0] == 0) return;
        // At most 4 of its images (the header may declare a billion empty ones).
        const std::size_t n = std::min<std::size_t>(a.dims[0], 4);
        sgp::dataset d;
        d.source = path;
        d.channels = 1;
        d.height = a.dims[1];
        d.width = a.dims[2];
        d.images.assign(a.data.begin(), a.data.begin() + static_cast<std::ptrdiff_t>(n * d.image_size()));
        d.labels.assign(n, 0);
        sgp::batch_loader l(d, {.batch = 4, .input = {1, 32, 32}});
        std::vector<float> x(4 * 32 * 32);
        std::vector<int> labels(4);
        l.next(x.data(), labels.data());
    });
}

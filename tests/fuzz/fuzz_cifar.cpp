// CIFAR-10 binary files through load_cifar10_files and the loader.
#include <vector>

#include "fuzz.hpp"
#include "sgp/data/cifar10.hpp"
#include "sgp/data/loader.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto path = sgp_fuzz::write_temp(sgp_fuzz::bytes(data, size), "cifar.bin");
    return sgp_fuzz::refuse_or_pass([&] {
        const auto d = sgp::load_cifar10_files({path}).head(2);
        sgp::batch_loader l(d, {.batch = 2, .input = {3, 32, 32}, .mean = {0.5f}, .std = {0.25f}});
        std::vector<float> x(2 * 3 * 32 * 32);
        std::vector<int> labels(2);
        l.next(x.data(), labels.data());
    });
}

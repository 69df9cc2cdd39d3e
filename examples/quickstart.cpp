#include <cstdio>
#include <sgp/sgp.hpp>
using namespace sgp::layers;

// A small VGG for 1x32x32 images: a type, with its shapes and costs known at compile time.
using small_vgg =
    sgp::sequential<sgp::input<1, 32, 32>, conv3x3<16>, batch_norm, relu, max_pool<2>, conv3x3<32>, batch_norm, relu,
                    max_pool<2>, conv3x3<64>, batch_norm, relu, global_avg_pool, flatten, linear<10>>;
static_assert(small_vgg::parameter_count == 24'058 && small_vgg::macs == 2'507'392);

int main() {
    // 5,000 training images held out for validation (decisions and progress); the test set is
    // read once, at the end.
    const auto [train, validation] =
        sgp::hold_out(sgp::load_fashion_mnist(sgp::fashion_mnist_default_dir, true), 5000, /*seed=*/1);
    const auto test = sgp::load_fashion_mnist(sgp::fashion_mnist_default_dir, false);
    sgp::batch_loader train_batches(train, {.batch = 64, .pad = 2});  // 28x28 -> 32x32
    sgp::validation_loader validation_batches(validation, {.batch = 256, .pad = 2});
    sgp::batch_loader test_batches(test, {.batch = 256, .shuffle = false, .pad = 2});

    sgp::trainer<small_vgg> t{sgp::sgd{.lr = 0.05f, .momentum = 0.9f, .weight_decay = 1e-4f, .nesterov = true},
                              {.threads = 2}};
    t.fit(train_batches, {.epochs = 2, .schedule = sgp::schedules::cosine{2}}, &validation_batches);
    std::printf("test accuracy %.2f %%\n", 100 * t.evaluate(test_batches).accuracy);
    sgp::save_state_dict(t.net(), "small_vgg.npz");  // PyTorch: numpy.load -> torch.from_numpy
}

// Data readers (IDX plain and gzip, CIFAR-10 binary) and the batch loader, including
// every kind of bad file.
#include <doctest/doctest.h>
#include <zlib.h>

#include <fstream>
#include <sgp/sgp.hpp>

#include "helpers.hpp"

namespace {

void write(const std::string& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary) << bytes;
}
void write_gz(const std::string& path, const std::string& bytes) {
    gzFile f = gzopen(path.c_str(), "wb");
    REQUIRE(f);
    gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
    gzclose(f);
}
std::string be32(std::uint32_t v) {
    return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}
// n images of h x w whose pixel (y, x) of image i is i*10 + y*w + x, and labels i % 10.
std::string idx_images(std::uint32_t n, std::uint32_t h, std::uint32_t w) {
    std::string s{0, 0, 8, 3};
    s += be32(n) + be32(h) + be32(w);
    for (std::uint32_t i = 0; i < n; ++i)
        for (std::uint32_t p = 0; p < h * w; ++p) s += static_cast<char>(i * 10 + p);
    return s;
}
std::string idx_labels(std::uint32_t n) {
    std::string s{0, 0, 8, 1};
    s += be32(n);
    for (std::uint32_t i = 0; i < n; ++i) s += static_cast<char>(i % 10);
    return s;
}

}  // namespace

TEST_CASE("IDX files read the same plain and gzip-compressed") {
    sgp_test::temp_dir d("idx");
    write(d.file("im"), idx_images(3, 2, 3));
    write(d.file("lb"), idx_labels(3));
    write_gz(d.file("im.gz"), idx_images(3, 2, 3));
    write_gz(d.file("lb.gz"), idx_labels(3));
    const auto a = sgp::load_idx(d.file("im"), d.file("lb")), b = sgp::load_idx(d.file("im.gz"), d.file("lb.gz"));
    CHECK(a.size() == 3);
    CHECK(a.height == 2);
    CHECK(a.width == 3);
    CHECK(a.images == b.images);
    CHECK(a.labels == b.labels);
    CHECK(a.image(2)[4] == 24);
    CHECK(a.labels[1] == 1);
}

TEST_CASE("bad IDX files get errors that name the file and the problem") {
    sgp_test::temp_dir d("idx-bad");
    write(d.file("lb"), idx_labels(3));
    auto fails = [&](const std::string& name, const std::string& bytes, const char* what) {
        write(d.file(name), bytes);
        CHECK_THROWS_WITH_AS(sgp::load_idx(d.file(name), d.file("lb")), doctest::Contains(what), sgp::error);
        CHECK_THROWS_WITH_AS(sgp::load_idx(d.file(name), d.file("lb")), doctest::Contains(name.c_str()), sgp::error);
    };
    const auto good = idx_images(3, 2, 3);
    fails("short", good.substr(0, good.size() - 1), "truncated");
    fails("header", good.substr(0, 9), "truncated");
    fails("tiny", "ab", "truncated");
    fails("magic", "\x01\x02" + good.substr(2), "not an IDX file");
    fails("type", std::string{0, 0, 0x0d, 3} + good.substr(4), "not supported");
    fails("extra", good + "zz", "malformed");
    CHECK_THROWS_WITH_AS(sgp::load_idx(d.file("missing"), d.file("lb")), doctest::Contains("file not found"),
                         sgp::error);
    // Labels that do not match the images.
    write(d.file("im"), good);
    write(d.file("lb4"), idx_labels(4));
    CHECK_THROWS_WITH_AS(sgp::load_idx(d.file("im"), d.file("lb4")), doctest::Contains("4 labels for 3 images"),
                         sgp::error);
    // A gzip stream cut short, and garbage behind a gzip header.
    write_gz(d.file("full.gz"), good);
    std::ifstream in(d.file("full.gz"), std::ios::binary);
    const std::string gz((std::istreambuf_iterator<char>(in)), {});
    write(d.file("cut.gz"), gz.substr(0, gz.size() / 2));
    CHECK_THROWS_WITH_AS(sgp::read_idx(d.file("cut.gz")), doctest::Contains("cut.gz"), sgp::error);
    std::string garbled = gz;
    for (std::size_t i = 12; i < garbled.size() - 8; ++i) garbled[i] = static_cast<char>(garbled[i] ^ 0x5a);
    write(d.file("garbled.gz"), garbled);
    CHECK_THROWS_WITH_AS(sgp::read_idx(d.file("garbled.gz")), doctest::Contains("garbled.gz"), sgp::error);
}

TEST_CASE("a missing Fashion-MNIST folder says how to get the data") {
    CHECK_THROWS_WITH_AS(sgp::load_fashion_mnist("/nonexistent/fmnist", true),
                         doctest::Contains("dataset-fashion-mnist"), sgp::error);
}

TEST_CASE("CIFAR-10 binary files: records, labels, truncation") {
    sgp_test::temp_dir d("cifar");
    std::string two;
    for (int r = 0; r < 2; ++r) {
        two += static_cast<char>(r == 0 ? 3 : 9);
        for (std::size_t p = 0; p < 3072; ++p) two += static_cast<char>((p + static_cast<std::size_t>(r)) % 251);
    }
    for (int i = 1; i <= 5; ++i) write(d.file("data_batch_" + std::to_string(i) + ".bin"), two);
    write(d.file("test_batch.bin"), two.substr(0, sgp::cifar10_record));
    const auto train = sgp::load_cifar10(d.path.string(), true), test = sgp::load_cifar10(d.path.string(), false);
    CHECK(train.size() == 10);
    CHECK(test.size() == 1);
    CHECK(train.channels == 3);
    CHECK(train.labels[0] == 3);
    CHECK(train.labels[1] == 9);
    CHECK(train.image(1)[1024] == (1024 + 1) % 251);  // first pixel of the green plane
    write(d.file("short.bin"), two.substr(0, two.size() - 5));
    CHECK_THROWS_WITH_AS(sgp::load_cifar10_files({d.file("short.bin")}), doctest::Contains("not a whole number"),
                         sgp::error);
    std::string bad = two;
    bad[0] = 12;
    write(d.file("label.bin"), bad);
    CHECK_THROWS_WITH_AS(sgp::load_cifar10_files({d.file("label.bin")}), doctest::Contains("label 12"), sgp::error);
    CHECK_THROWS_WITH_AS(sgp::load_cifar10_files({d.file("none.bin")}), doctest::Contains("none.bin: file not found"),
                         sgp::error);
}

TEST_CASE("batch loader: padding, normalisation, channel-major layout, shuffling") {
    sgp::dataset ds;
    ds.source = "hand-made";
    ds.channels = 1;
    ds.height = ds.width = 2;
    for (std::uint8_t i = 0; i < 5; ++i) {
        ds.labels.push_back(i);
        for (int p = 0; p < 4; ++p) ds.images.push_back(static_cast<std::uint8_t>(i * 50 + p));
    }
    sgp::loader_options o;
    o.batch = 2;
    o.shuffle = false;
    o.pad = 1;
    o.mean = {0.f};
    o.std = {1.f / 255.f};  // output = raw pixel value
    sgp::batch_loader l(ds, o);
    CHECK(l.height() == 4);
    CHECK(l.batches() == 3);
    std::vector<float> x(2 * 16);
    std::vector<int> y(2);
    REQUIRE(l.next(x.data(), y.data()) == 2);
    CHECK(y == std::vector<int>{0, 1});
    // image 1 sits after image 0 (channel-major with one channel = NCHW); its (1,1) is pixel 0 = 50
    CHECK(x[0] == 0.f);
    CHECK(x[5] == doctest::Approx(0));
    CHECK(x[16 + 5] == doctest::Approx(50));
    CHECK(x[16 + 10] == doctest::Approx(53));
    REQUIRE(l.next(x.data(), y.data()) == 2);
    REQUIRE(l.next(x.data(), y.data()) == 1);
    CHECK(l.next(x.data(), y.data()) == 0);

    o.shuffle = true;
    sgp::batch_loader s(ds, o);
    auto order = [&](std::size_t epoch) {
        s.start_epoch(epoch);
        std::vector<int> all;
        for (std::size_t n; (n = s.next(x.data(), y.data())) > 0;)
            all.insert(all.end(), y.begin(), y.begin() + static_cast<long>(n));
        return all;
    };
    const auto e0 = order(0), e1 = order(1);
    CHECK(e0 == order(0));  // the same seed and epoch give the same order
    CHECK(e0 != e1);
    auto sorted = e1;
    std::sort(sorted.begin(), sorted.end());
    CHECK(sorted == std::vector<int>{0, 1, 2, 3, 4});
}

TEST_CASE("random crop and flip move pixels, reproducibly, and stay within the padding") {
    sgp::dataset ds;
    ds.channels = 1;
    ds.height = ds.width = 4;
    ds.labels = {0};
    for (int p = 0; p < 16; ++p) ds.images.push_back(static_cast<std::uint8_t>(p + 1));
    sgp::loader_options o;
    o.batch = 1;
    o.shuffle = false;
    o.crop_padding = 2;
    o.flip = true;
    o.std = {1.f / 255.f};
    sgp::batch_loader l(ds, o);
    std::vector<float> a(16), b(16);
    int y;
    bool moved = false;
    for (std::size_t e = 0; e < 20; ++e) {
        l.start_epoch(e);
        l.next(a.data(), &y);
        l.start_epoch(e);
        l.next(b.data(), &y);
        CHECK(a == b);
        // Every output pixel is an input pixel or padding.
        for (float v : a) CHECK((v == 0.f || (v >= 1.f && v <= 16.f)));
        moved = moved || a[0] != 1.f;
    }
    CHECK(moved);
}

TEST_CASE("loader rejects bad options") {
    sgp::dataset ds;
    ds.source = "three-channel";
    ds.channels = 3;
    ds.height = ds.width = 1;
    ds.labels = {0};
    ds.images = {1, 2, 3};
    sgp::loader_options o;
    o.mean = {0.1f, 0.2f};
    CHECK_THROWS_WITH_AS(sgp::batch_loader(ds, o), doctest::Contains("2 values for 3 channels"), sgp::error);
    sgp::dataset empty;
    empty.source = "nothing";
    CHECK_THROWS_WITH_AS(sgp::batch_loader(empty, {}), doctest::Contains("nothing: the data set is empty"), sgp::error);
}

// Issue 12: images of another size than the network's input used to overflow the batch
// buffer (the padding was (32 - 28) / 2 whatever the images were).
TEST_CASE("the loader pads images of any size that fits to the network's input, and refuses the rest") {
    sgp_test::temp_dir d("idx-sizes");
    auto set_of = [&](std::uint32_t h, std::uint32_t w) {
        const std::string stem = d.file(std::to_string(h) + "x" + std::to_string(w));
        write(stem + "-im", idx_images(3, h, w));
        write(stem + "-lb", idx_labels(3));
        return sgp::load_idx(stem + "-im", stem + "-lb");
    };
    const sgp::shape net{1, 32, 32};
    for (auto [h, w] : {std::pair<std::uint32_t, std::uint32_t>{28, 28}, {32, 32}, {29, 29}, {20, 20}, {17, 30}}) {
        CAPTURE(h);
        CAPTURE(w);
        const auto s = set_of(h, w);
        sgp::batch_loader l(s, {.batch = 3, .shuffle = false, .input = net});
        CHECK(l.height() == 32);
        CHECK(l.width() == 32);
        CHECK_NOTHROW(l.check_network(net, 10, "the network"));
        // Exactly the buffer's size: one more float is a sentinel that must stay untouched.
        std::vector<float> x(3 * 32 * 32 + 1, -7.f);
        std::vector<int> labels(3);
        REQUIRE(l.next(x.data(), labels.data()) == 3);
        CHECK(x.back() == -7.f);
        // Centred: the extra row / column of an odd difference goes to the bottom / right.
        const std::size_t top = (32 - h) / 2, left = (32 - w) / 2;
        for (std::size_t b = 0; b < 3; ++b)
            for (std::size_t y = 0; y < 32; ++y)
                for (std::size_t xx = 0; xx < 32; ++xx) {
                    const bool inside = y >= top && y < top + h && xx >= left && xx < left + w;
                    const float want =
                        inside ? static_cast<float>(s.image(b)[(y - top) * w + (xx - left)]) / 255.f : 0.f;
                    REQUIRE(x[(b * 32 + y) * 32 + xx] == want);
                }
    }
    // Too large, in either direction, or another channel count: refused, naming the data set and both sizes.
    for (auto [h, w] : {std::pair<std::uint32_t, std::uint32_t>{64, 64}, {33, 20}, {20, 33}}) {
        const auto s = set_of(h, w);
        CHECK_THROWS_WITH_AS(sgp::batch_loader(s, {.input = net}),
                             doctest::Contains((std::to_string(h) + "x" + std::to_string(w) + "-im: images of 1x" +
                                                std::to_string(h) + "x" + std::to_string(w))
                                                   .c_str()),
                             sgp::error);
        CHECK_THROWS_WITH_AS(sgp::batch_loader(s, {.input = net}),
                             doctest::Contains("do not fit the network's input of 1x32x32"), sgp::error);
    }
    const auto s28 = set_of(28, 28);
    CHECK_THROWS_WITH_AS(sgp::batch_loader(s28, {.input = {3, 32, 32}}), doctest::Contains("1x28x28"), sgp::error);
    CHECK_THROWS_WITH_AS(sgp::batch_loader(s28, {.pad = 2, .input = net}), doctest::Contains("not both"), sgp::error);
    // Without the network's size, a loader whose images do not match the network is refused
    // by whoever feeds the network (20x20 padded by 2 is 24x24, not 32x32: scrambled input).
    const auto s20 = set_of(20, 20);
    sgp::batch_loader fixed_pad(s20, {.pad = 2});
    CHECK_THROWS_WITH_AS(fixed_pad.check_network(net, 10, "vgg"),
                         doctest::Contains("makes images of 1x24x24 (channels x height x width) but vgg takes 1x32x32"),
                         sgp::error);
    CHECK_THROWS_WITH_AS(sgp::batch_loader(s28, {.input = net}).check_network(net, 5, "vgg"),
                         doctest::Contains("the data set has 10 classes but vgg has 5 outputs"), sgp::error);
}

TEST_CASE("the examples' loader options pad the test split by its own size") {
    // A test split of another size than the training split: each loader derives its padding.
    sgp_test::temp_dir d("idx-splits");
    write(d.file("train-im"), idx_images(2, 28, 28));
    write(d.file("test-im"), idx_images(2, 30, 30));
    write(d.file("lb"), idx_labels(2));
    const auto train = sgp::load_idx(d.file("train-im"), d.file("lb")),
               test = sgp::load_idx(d.file("test-im"), d.file("lb"));
    const sgp::loader_options o{.batch = 2, .shuffle = false, .input = {1, 32, 32}};
    sgp::batch_loader a(train, o), b(test, o);
    std::vector<float> x(2 * 32 * 32 + 1, -7.f);
    std::vector<int> labels(2);
    CHECK(a.next(x.data(), labels.data()) == 2);
    CHECK(b.next(x.data(), labels.data()) == 2);
    CHECK(x.back() == -7.f);
    CHECK(x[1 * 32 + 1] == 0.f / 255.f);  // test image 0, pixel (0, 0) at (1, 1): pad 1
    CHECK(x[1 * 32 + 2] == 1.f / 255.f);
}

// Issue 12: labels at or above the class count were read past the network's outputs.
TEST_CASE("labels at or above the class count are refused where they enter") {
    sgp::dataset d;
    d.source = "my-set";
    d.channels = 1;
    d.height = d.width = 2;
    d.classes = 10;
    d.images.assign(3 * 4, 0);
    d.labels = {1, 12, 3};
    CHECK_THROWS_WITH_AS(sgp::batch_loader(d, {}),
                         doctest::Contains("my-set: label 12 of image 1 is not below the data set's 10 classes"),
                         sgp::error);
    d.labels = {1, 2, 3};
    d.images.resize(5);
    CHECK_THROWS_WITH_AS(sgp::batch_loader(d, {}), doctest::Contains("my-set: 5 pixel bytes for 3 images"), sgp::error);
    // The loss, the last line of defence, never indexes past its k classes.
    const float logits[2 * 3] = {};
    const int labels[3] = {0, 1, 2};
    CHECK_THROWS_WITH_AS(sgp::softmax_cross_entropy(logits, labels, 2, 3, nullptr),
                         doctest::Contains("label 2 of image 2 in the batch is not below the network's 2 classes"),
                         sgp::error);
    const int negative[3] = {0, -1, 0};
    CHECK_THROWS_AS(sgp::softmax_cross_entropy(logits, negative, 2, 3, nullptr), sgp::error);
}

// Issue 12: an IDX header whose dimensions multiply past 2^64 wrapped to a small total and
// was accepted; a compressed file was inflated whole, however much it held.
TEST_CASE("IDX sizes are checked before anything is allocated or inflated") {
    sgp_test::temp_dir d("idx-sizes-bad");
    std::string wrap{0, 0, 8, 3};
    wrap += be32(4) + be32(0x80000000u) + be32(0x80000000u);  // 4 * 2^31 * 2^31 = 2^64
    write(d.file("wrap"), wrap);
    CHECK_THROWS_WITH_AS(sgp::read_idx(d.file("wrap")),
                         doctest::Contains("wrap: the data size the IDX header declares overflows"), sgp::error);
    std::string huge{0, 0, 8, 3};
    huge += be32(60000) + be32(1000) + be32(1000);  // 60 GB
    write(d.file("huge"), huge + "abc");
    CHECK_THROWS_WITH_AS(sgp::read_idx(d.file("huge")),
                         doctest::Contains("huge: the IDX header claims 60000000000 bytes"), sgp::error);
    std::string big{0, 0, 8, 3};
    big += be32(1000) + be32(1000) + be32(1000);  // 1 GB: within the limit, not within 1 KB of gzip
    write_gz(d.file("big.gz"), big + std::string(1000, 'x'));
    CHECK_THROWS_WITH_AS(sgp::read_idx(d.file("big.gz")), doctest::Contains("when inflated"), sgp::error);
    // 64 MB of zeros after a 4-byte image: inflation stops after a few kilobytes.
    std::string small{0, 0, 8, 3};
    small += be32(1) + be32(2) + be32(2) + "abcd";
    write_gz(d.file("bomb.gz"), small + std::string(64 << 20, '\0'));
    CHECK_THROWS_WITH_AS(sgp::read_idx(d.file("bomb.gz")), doctest::Contains("malformed: at least 4096 bytes after"),
                         sgp::error);
    // A folder where a file should be: named, not "basic_filebuf::underflow".
    std::filesystem::create_directories(d.file("dir"));
    CHECK_THROWS_WITH_AS(sgp::read_idx(d.file("dir")), doctest::Contains("dir: is a folder, not a file"), sgp::error);
    CHECK_THROWS_WITH_AS(sgp::load_cifar10_files({d.file("dir")}), doctest::Contains("dir: is a folder"), sgp::error);
}

TEST_CASE("a validation split is held out of training images: disjoint, complete, fixed by its seed") {
    sgp::dataset d;
    d.source = "train-images";
    d.part = sgp::data_part::train;
    d.channels = 1, d.height = 1, d.width = 2, d.classes = 10;
    for (std::size_t i = 0; i < 500; ++i) {  // image i holds i in two bytes: each image is identifiable
        d.images.push_back(static_cast<std::uint8_t>(i & 255));
        d.images.push_back(static_cast<std::uint8_t>(i >> 8));
        d.labels.push_back(static_cast<std::uint8_t>(i % 10));
    }
    auto ids = [](const sgp::dataset& x) {
        std::vector<std::size_t> v;
        for (std::size_t i = 0; i < x.size(); ++i) {
            v.push_back(x.image(i)[0] + 256u * x.image(i)[1]);
            CHECK(x.labels[i] == v.back() % 10);  // labels travel with their images
        }
        return v;
    };
    const auto s = sgp::hold_out(d, 120, 7);
    const auto tr = ids(s.train), va = ids(s.validation.data());
    CHECK(tr.size() == 380);
    CHECK(va.size() == 120);
    CHECK(std::is_sorted(tr.begin(), tr.end()));  // both keep the original order
    CHECK(std::is_sorted(va.begin(), va.end()));
    std::vector<std::size_t> all = tr;
    all.insert(all.end(), va.begin(), va.end());
    std::sort(all.begin(), all.end());
    for (std::size_t i = 0; i < all.size(); ++i) CHECK(all[i] == i);  // disjoint and complete
    CHECK(va.back() > 400);                                           // drawn across the set, not its tail or head
    CHECK(va.front() < 100);
    CHECK(ids(sgp::hold_out(d, 120, 7).validation.data()) == va);  // same seed, same split
    CHECK(ids(sgp::hold_out(d, 120, 8).validation.data()) != va);
    CHECK(s.validation.data().source.find("validation") != std::string::npos);

    auto test = d;
    test.part = sgp::data_part::test;
    test.source = "t10k-images";
    CHECK_THROWS_WITH_AS(sgp::hold_out(test, 100, 1), doctest::Contains("t10k-images: is a test split"), sgp::error);
    CHECK_THROWS_WITH_AS(sgp::hold_out(d, 0, 1), doctest::Contains("cannot hold out 0"), sgp::error);
    CHECK_THROWS_WITH_AS(sgp::hold_out(d, 500, 1), doctest::Contains("cannot hold out 500"), sgp::error);
}

TEST_CASE("data loaders mark which published split they read") {
    sgp_test::temp_dir dir("split_parts");
    write(dir.file("train-images-idx3-ubyte"), idx_images(3, 2, 2));
    write(dir.file("train-labels-idx1-ubyte"), idx_labels(3));
    write(dir.file("t10k-images-idx3-ubyte"), idx_images(2, 2, 2));
    write(dir.file("t10k-labels-idx1-ubyte"), idx_labels(2));
    CHECK(sgp::load_fashion_mnist(dir.path.string(), true).part == sgp::data_part::train);
    const auto test = sgp::load_fashion_mnist(dir.path.string(), false);
    CHECK(test.part == sgp::data_part::test);
    CHECK(test.head(1).part == sgp::data_part::test);
    CHECK(test.slice(1, 1).part == sgp::data_part::test);  // a part of a test set is still one
    CHECK_THROWS_WITH_AS(sgp::hold_out(test, 1, 1), doctest::Contains("is a test split"), sgp::error);
}

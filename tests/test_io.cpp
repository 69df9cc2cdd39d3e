// .npy / .npz reading and writing, state_dict save and load, atomic writes, and the errors
// for bad files.
#include <doctest/doctest.h>

#include <fstream>
#include <sgp/sgp.hpp>

#include "helpers.hpp"

using namespace sgp::layers;
using small = sgp::sequential<sgp::input<1, 4, 4>, conv3x3<2, true>, batch_norm, relu, flatten, linear<3>>;

namespace {
std::string read(const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}
void write(const std::string& p, const std::string& s) {
    std::ofstream(p, std::ios::binary) << s;
}
}  // namespace

TEST_CASE(".npy encodes NumPy's header and round-trips float32 and int64") {
    const float v[6] = {1, 2, 3, 4, 5, 6.5f};
    const auto a = sgp::npy_array::from_floats(v, {2, 3});
    const std::string bytes = sgp::npy_encode(a);
    CHECK(bytes.substr(0, 6) == "\x93NUMPY");
    CHECK(bytes.find("'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }") != std::string::npos);
    const std::size_t header = 10 + static_cast<unsigned char>(bytes[8]);
    CHECK(header % 64 == 0);
    const auto b = sgp::npy_decode(bytes, "mem");
    CHECK(b.shape == std::vector<std::size_t>{2, 3});
    CHECK(b.to_floats("mem")[5] == 6.5f);
    CHECK(sgp::npy_decode(sgp::npy_encode(sgp::npy_array::from_int64(-42)), "mem").to_int64("mem") == -42);
    CHECK(sgp::npy_encode(sgp::npy_array::from_floats(v, {6})).find("(6,)") != std::string::npos);
}

TEST_CASE("bad .npy data is refused with the reason") {
    const float v[2] = {1, 2};
    const std::string good = sgp::npy_encode(sgp::npy_array::from_floats(v, {2}));
    CHECK_THROWS_WITH_AS(sgp::npy_decode("hello world", "x"), doctest::Contains("bad magic"), sgp::error);
    CHECK_THROWS_WITH_AS(sgp::npy_decode(good.substr(0, good.size() - 1), "x"), doctest::Contains("truncated"),
                         sgp::error);
    std::string big = good;
    big.replace(big.find("<f4"), 3, ">f4");
    CHECK_THROWS_WITH_AS(sgp::npy_decode(big, "x"), doctest::Contains("not little-endian"), sgp::error);
    std::string fortran = good;
    fortran.replace(fortran.find("False"), 5, "True ");
    CHECK_THROWS_WITH_AS(sgp::npy_decode(fortran, "x"), doctest::Contains("Fortran"), sgp::error);
    const auto ints = sgp::npy_decode(sgp::npy_encode(sgp::npy_array::from_int64(1)), "x");
    CHECK_THROWS_WITH_AS(ints.to_floats("x"), doctest::Contains("floating point"), sgp::error);
}

TEST_CASE("state_dict round-trips through .npz, written atomically") {
    sgp_test::temp_dir d("npz");
    small a(1), b(2);
    sgp::save_state_dict(a, d.file("w.npz"));
    CHECK(std::distance(std::filesystem::directory_iterator(d.path), std::filesystem::directory_iterator{}) == 1);
    sgp::load_state_dict(b, d.file("w.npz"));
    std::vector<float> wa, wb;
    a.for_each_tensor([&](const std::string&, const sgp::tensor_ref& t) {
        if (t.value) wa.insert(wa.end(), t.value, t.value + t.size());
    });
    b.for_each_tensor([&](const std::string&, const sgp::tensor_ref& t) {
        if (t.value) wb.insert(wb.end(), t.value, t.value + t.size());
    });
    CHECK(wa == wb);
    const auto arch = sgp::load_npz(d.file("w.npz"));
    CHECK(arch.count("0.weight"));
    CHECK(arch.at("1.num_batches_tracked").dtype == "<i8");
    CHECK(arch.at("4.weight").shape == std::vector<std::size_t>{3, 32});
}

TEST_CASE("NumPy-written archives load: savez (zip64 local headers) and savez_compressed (deflate)") {
    // net_a.npz in tests/golden is written by numpy.savez; its keys carry a "state." prefix.
    const auto a = sgp::load_npz(std::string(SGP_GOLDEN_DIR) + "/net_a.npz");
    CHECK(a.at("state.0.weight").shape == std::vector<std::size_t>{4, 2, 3, 3});
    CHECK(a.at("x").dtype == "<f4");
    // A savez_compressed file made by the fixture script's numpy (deflate entries).
    const std::string deflated = std::string(SGP_GOLDEN_DIR) + "/compressed.npz";
    const auto c = sgp::load_npz(deflated);
    const auto v = c.at("values").to_floats("values");
    REQUIRE(v.size() == 1000);
    CHECK(v[999] == doctest::Approx(999 * 0.5));
}

TEST_CASE("state_dict errors name the file, the key and the shapes") {
    sgp_test::temp_dir d("npz-bad");
    small a;
    sgp::npz_archive arch;
    sgp::add_state_dict(a, arch);
    auto attempt = [&](const sgp::npz_archive& x) {
        sgp::save_npz(d.file("bad.npz"), x);
        small b;
        sgp::load_state_dict(b, d.file("bad.npz"));
    };
    auto wrong_shape = arch;
    const float z[4] = {};
    wrong_shape["0.bias"] = sgp::npy_array::from_floats(z, {4});
    CHECK_THROWS_WITH_AS(attempt(wrong_shape), doctest::Contains("'0.bias' has shape (4,), the network expects (2,)"),
                         sgp::error);
    auto missing = arch;
    missing.erase("4.weight");
    CHECK_THROWS_WITH_AS(attempt(missing), doctest::Contains("no array '4.weight'"), sgp::error);
    auto extra = arch;
    extra["7.weight"] = sgp::npy_array::from_floats(z, {4});
    CHECK_THROWS_WITH_AS(attempt(extra), doctest::Contains("another network"), sgp::error);
    CHECK_THROWS_WITH_AS(sgp::load_state_dict(a, d.file("nothing.npz")),
                         doctest::Contains("nothing.npz: file not found"), sgp::error);
}

TEST_CASE("corrupt and truncated .npz files are refused, never crash") {
    sgp_test::temp_dir d("npz-corrupt");
    small a;
    sgp::save_state_dict(a, d.file("good.npz"));
    const std::string good = read(d.file("good.npz"));
    auto refuses = [&](const std::string& bytes, const char* what) {
        write(d.file("c.npz"), bytes);
        CHECK_THROWS_WITH_AS(sgp::load_npz(d.file("c.npz")), doctest::Contains(what), sgp::error);
    };
    refuses("", "too short");
    refuses(good.substr(0, good.size() / 2), "c.npz");
    refuses(good.substr(0, good.size() - 10), "c.npz");
    // A flipped bit in an array's data (CRC) and in a local header's size field.
    std::string flipped = good;
    const auto data_at = good.size() / 2;
    flipped[data_at] = static_cast<char>(flipped[data_at] ^ 1);
    refuses(flipped, "c.npz");
    std::string header = good;
    header[24] = static_cast<char>(header[24] ^ 1);  // first local header, uncompressed size
    refuses(header, "disagrees with the zip directory");
    // Every single-byte truncation and many corruptions: an sgp::error each, nothing else.
    std::size_t refused = 0;
    for (std::size_t cut = 0; cut < good.size(); cut += 7) {
        write(d.file("t.npz"), good.substr(0, cut));
        try {
            sgp::load_npz(d.file("t.npz"));
        } catch (const sgp::error&) {
            ++refused;
        }
    }
    CHECK(refused == (good.size() + 6) / 7);
    sgp::rng r(3);
    for (int i = 0; i < 300; ++i) {
        std::string bad = good;
        for (int k = 0; k < 4; ++k) bad[r.below(bad.size())] = static_cast<char>(r.below(256));
        write(d.file("r.npz"), bad);
        try {
            small b;
            sgp::load_state_dict(b, d.file("r.npz"));
        } catch (const sgp::error&) {
        }
    }
}

TEST_CASE("atomic writes replace the target and leave no temporary behind") {
    sgp_test::temp_dir d("atomic");
    sgp::write_file_atomic(d.file("f"), "one");
    sgp::write_file_atomic(d.file("f"), "two");
    CHECK(read(d.file("f")) == "two");
    CHECK(std::distance(std::filesystem::directory_iterator(d.path), std::filesystem::directory_iterator{}) == 1);
    CHECK_THROWS_WITH_AS(sgp::write_file_atomic(d.file("no/such/dir/f"), "x"), doctest::Contains("does not exist"),
                         sgp::error);
}

TEST_CASE("json writer produces valid nesting and escapes") {
    sgp::json_writer j;
    j.begin_object().field("a", 1).field("s", "q\"\n");
    j.key("l").begin_array().value(1.5).value(true).end_array();
    j.key("o").begin_object().field("x", std::size_t{2}).end_object().end_object();
    CHECK(j.str() == "{\"a\": 1, \"s\": \"q\\\"\\u000a\", \"l\": [1.5, true], \"o\": {\"x\": 2}}");
}

TEST_CASE("json reader parses what the writer writes, and refuses malformed text") {
    sgp::json_writer j;
    j.begin_object().field("n", 2.5).field("s", "a\"b").field("t", true);
    j.key("l").begin_array().value(1).value(2).end_array().end_object();
    const auto v = sgp::parse_json(j.str(), "mem");
    CHECK(v.at("n", "mem").number("n") == 2.5);
    CHECK(v.at("s", "mem").text("s") == "a\"b");
    CHECK(v.at("t", "mem").b);
    CHECK(v.at("l", "mem").array("l").size() == 2);
    CHECK(sgp::parse_json(sgp::dump(v), "again").at("l", "x").items[1].index("i") == 2);
    for (const char* bad : {"", "{", "[1,", "{\"a\" 1}", "tru", "\"open", "[1] x", "{\"a\": 1e}"})
        CHECK_THROWS_WITH_AS(sgp::parse_json(bad, "bad.json"), doctest::Contains("bad.json: invalid JSON"), sgp::error);
    CHECK_THROWS_WITH_AS(v.at("missing", "f.json"), doctest::Contains("f.json: missing 'missing'"), sgp::error);
    CHECK_THROWS_WITH_AS(v.at("n", "f").index("f: n"), doctest::Contains("non-negative integer"), sgp::error);
}

namespace {
void le(std::string& s, std::uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) s += static_cast<char>((v >> (8 * i)) & 0xff);
}
// A one-entry zip: local header, data, central directory entry and end record, with the
// fields issue 12's bad files used under the caller's control.
struct zip_entry {
    std::string name = "a.npy", data, extra;  // extra: the central entry's extra field
    std::uint64_t method = 0, csize = 0, usize = 0, local = 0, crc = 0;
    std::string eocd_prefix;            // bytes before the end record (a zip64 locator)
    std::uint64_t cd_off = 0xfffffffe;  // 0xfffffffe: where the directory really is
};
std::string zip_of(const zip_entry& e) {
    std::string s;
    le(s, 0x04034b50, 4), le(s, 20, 2), le(s, 0, 2), le(s, e.method, 2), le(s, 0, 4), le(s, e.crc, 4);
    le(s, e.csize, 4), le(s, e.usize, 4), le(s, e.name.size(), 2), le(s, 0, 2);
    s += e.name + e.data;
    const std::size_t cd = s.size();
    le(s, 0x02014b50, 4), le(s, 20, 2), le(s, 20, 2), le(s, 0, 2), le(s, e.method, 2), le(s, 0, 4), le(s, e.crc, 4);
    le(s, e.csize, 4), le(s, e.usize, 4), le(s, e.name.size(), 2), le(s, e.extra.size(), 2), le(s, 0, 2);
    le(s, 0, 2), le(s, 0, 2), le(s, 0, 4), le(s, e.local, 4);
    s += e.name + e.extra;
    const std::size_t cd_size = s.size() - cd;
    s += e.eocd_prefix;
    le(s, 0x06054b50, 4), le(s, 0, 2), le(s, 0, 2), le(s, 1, 2), le(s, 1, 2), le(s, cd_size, 4);
    le(s, e.cd_off == 0xfffffffe ? cd : e.cd_off, 4), le(s, 0, 2);
    return s;
}
}  // namespace

// Issue 12: offsets from zip64 records wrapped around 2^64 and were read before the buffer;
// a 186-byte file claiming a 4 GiB deflated entry allocated 4 GiB before refusing it.
TEST_CASE(".npz sizes and offsets are checked against the file and a limit before use") {
    const float v[2] = {1, 2};
    const std::string body = sgp::npy_encode(sgp::npy_array::from_floats(v, {2}));
    zip_entry good;
    good.data = body;
    good.csize = good.usize = body.size();
    good.crc = sgp::zip_detail::crc(body);
    REQUIRE(sgp::npz_decode(zip_of(good), "good.npz").at("a").to_floats("a") == std::vector<float>{1, 2});

    // The zip64 locator points at 2^64 - 8 (offset + 56 wraps to 48).
    zip_entry wrap64 = good;
    le(wrap64.eocd_prefix, 0x07064b50, 4), le(wrap64.eocd_prefix, 0, 4);
    le(wrap64.eocd_prefix, ~std::uint64_t{0} - 7, 8), le(wrap64.eocd_prefix, 1, 4);
    wrap64.cd_off = 0xffffffff;
    CHECK_THROWS_WITH_AS(sgp::npz_decode(zip_of(wrap64), "wrap64.npz"),
                         doctest::Contains("wrap64.npz: corrupt zip64 directory"), sgp::error);

    // The entry's zip64 extra field puts its local header at 2^64 - 16.
    zip_entry wrap_local = good;
    wrap_local.local = 0xffffffff;
    le(wrap_local.extra, 1, 2), le(wrap_local.extra, 8, 2), le(wrap_local.extra, ~std::uint64_t{0} - 15, 8);
    CHECK_THROWS_WITH_AS(sgp::npz_decode(zip_of(wrap_local), "wrap.npz"), doctest::Contains("corrupt entry 'a.npy'"),
                         sgp::error);
    // An extra field longer than the room it has.
    zip_entry long_extra = good;
    le(long_extra.extra, 1, 2), le(long_extra.extra, 200, 2), le(long_extra.extra, 0, 8);
    CHECK_THROWS_WITH_AS(sgp::npz_decode(zip_of(long_extra), "x.npz"), doctest::Contains("extra field"), sgp::error);

    // A deflated entry claiming 4 GiB - 1: refused before its buffer exists.
    zip_entry bomb = good;
    bomb.method = 8;
    bomb.data = std::string("\x03\x00", 2);  // an empty deflate stream
    bomb.csize = 2;
    bomb.usize = 0xffffffff;
    const std::string small_file = zip_of(bomb);
    CHECK(small_file.size() < 200);
    CHECK_THROWS_WITH_AS(sgp::npz_decode(small_file, "bomb.npz"),
                         doctest::Contains("claims 4294967295 bytes, more than the 2147483648-byte limit"), sgp::error);
    bomb.usize = 100'000;  // within the limit, but 2 deflated bytes cannot hold it
    CHECK_THROWS_WITH_AS(sgp::npz_decode(zip_of(bomb), "bomb.npz"),
                         doctest::Contains("2 deflated bytes cannot inflate to the 100000 it claims"), sgp::error);
    // A stored entry whose two sizes differ.
    zip_entry stored = good;
    stored.usize = body.size() + 1;
    CHECK_THROWS_WITH_AS(sgp::npz_decode(zip_of(stored), "s.npz"), doctest::Contains("sizes differ"), sgp::error);
    // More entries than the directory has room for.
    std::string many = zip_of(good);
    many[many.size() - 22 + 10] = static_cast<char>(0xff);
    CHECK_THROWS_WITH_AS(sgp::npz_decode(many, "m.npz"), doctest::Contains("more entries"), sgp::error);
}

// Issue 12: "error: stoul" / "error: stoull" for a bad .npy header; memcpy from a null
// pointer for an empty array.
TEST_CASE(".npy header numbers are parsed by sgp, with errors naming the array") {
    const float v[2] = {1, 2};
    const std::string good = sgp::npy_encode(sgp::npy_array::from_floats(v, {2}));
    auto with = [&](const std::string& from, const std::string& to) {
        std::string s = good;
        s.replace(s.find(from), from.size(), to);
        return s;
    };
    CHECK_THROWS_WITH_AS(sgp::npy_decode(with("<f4", "<f99999999999999999999"), "w.npy"),
                         doctest::Contains("w.npy: unknown dtype <f99999999999999999999"), sgp::error);
    CHECK_THROWS_WITH_AS(sgp::npy_decode(with("<f4", "<fxy"), "w.npy"), doctest::Contains("unknown dtype <fxy"),
                         sgp::error);
    CHECK_THROWS_WITH_AS(sgp::npy_decode(with("(2,)", "(99999999999999999999999,)"), "s.npy"),
                         doctest::Contains("s.npy: a dimension in the .npy header overflows"), sgp::error);
    CHECK_THROWS_WITH_AS(sgp::npy_decode(with("(2,)", "(4294967296, 4294967296)"), "p.npy"),
                         doctest::Contains("p.npy: the size of shape (4294967296, 4294967296) overflows"), sgp::error);
    CHECK_THROWS_WITH_AS(sgp::npy_decode(with("(2,)", "(1000000000,)"), "l.npy"),
                         doctest::Contains("l.npy: shape (1000000000,) claims 4000000000 bytes"), sgp::error);
    // Empty arrays convert without touching a null pointer (UBSan in the sanitize build).
    const auto empty = sgp::npy_decode(sgp::npy_encode(sgp::npy_array::from_floats(nullptr, {0, 3})), "e.npy");
    CHECK(empty.to_floats("e").empty());
    CHECK(empty.shape == std::vector<std::size_t>{0, 3});
}

TEST_CASE("loaders given a folder name it") {
    sgp_test::temp_dir d("folders");
    std::filesystem::create_directories(d.file("w.npz"));
    small net;
    CHECK_THROWS_WITH_AS(sgp::load_npz(d.file("w.npz")), doctest::Contains("w.npz: is a folder, not a file"),
                         sgp::error);
    CHECK_THROWS_WITH_AS(sgp::load_state_dict(net, d.file("w.npz")), doctest::Contains("w.npz: is a folder"),
                         sgp::error);
    CHECK_THROWS_WITH_AS(sgp::prune::load_plan(d.file("w.npz")), doctest::Contains("w.npz: is a folder"), sgp::error);
}

// Issue 12: dump() wrote object keys unescaped ({"a"b": 1}), and a JSON number such as 1e25
// was converted to an index with undefined behaviour.
TEST_CASE("JSON keys are escaped, numbers range-checked, deep nesting refused") {
    sgp::json_value o;
    o.kind = sgp::json_value::type::object;
    o.fields["a\"b\\c\n"].kind = sgp::json_value::type::number;
    o.fields["a\"b\\c\n"].num = 1;
    const auto back = sgp::parse_json(sgp::dump(o), "keys");
    CHECK(back.at("a\"b\\c\n", "keys").number("n") == 1);
    sgp::json_writer j;
    j.begin_object().field("a\"b", 1).end_object();
    CHECK(sgp::parse_json(j.str(), "w").at("a\"b", "w").index("i") == 1);
    CHECK(sgp::dump(sgp::parse_json("[3, 2.5, -0.125, 1e300]", "n")) == "[3,2.5,-0.125,1e+300]");
    for (const char* n : {"1e25", "-1", "2.5", "1e16", "1e308"})
        CHECK_THROWS_WITH_AS(sgp::parse_json(n, "f").index("f: layer"),
                             doctest::Contains("f: layer: expected a non-negative integer (at most 2^53)"), sgp::error);
    CHECK(sgp::parse_json("9007199254740992", "f").index("f") == 9007199254740992ull);
    CHECK_THROWS_WITH_AS(sgp::parse_json(std::string(100, '[') + std::string(100, ']'), "deep.json"),
                         doctest::Contains("deep.json: invalid JSON: nested too deeply"), sgp::error);
    CHECK_NOTHROW(sgp::parse_json(std::string(60, '[') + std::string(60, ']'), "ok.json"));
    CHECK_THROWS_WITH_AS(sgp::parse_json("\"\xff\"", "utf8.json"), doctest::Contains("utf8.json: invalid JSON"),
                         sgp::error);
}

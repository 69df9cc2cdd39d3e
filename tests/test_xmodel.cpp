// The .xmodel exporter and reader. Read back with sgp's schema, a file has every op, edge, shape
// and attribute type of a quantized XIR graph, and the graph, interpreted as XIR defines its
// ops (NHWC, OHWI, fix = DPU_ROUND and saturation), computes exactly what the int8 reference
// computes. Independently of sgp's schema: a wire-format walker checks the encoding XIR
// requires, and files XIR's own writer produced (tests/fixtures/xir) read back and compute
// the same integers. The pre-check refuses what XIR's reader would abort on; corrupt and
// truncated files are clear errors (and the reader is fuzzed for a while). Against the real
// XIR itself: test_xir.cpp, where XIR is available.
#include <doctest/doctest.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sgp/export/xmodel_import.hpp>
#include <sgp/export/xmodel_reader.hpp>
#include <sgp/export/xmodel_writer.hpp>
#include <sgp/target/int8_reference.hpp>
#include <sstream>

#include "helpers.hpp"
#include "qmodel_fixtures.hpp"
#include "xir_fixtures.hpp"
#include "xmodel_mutations.hpp"

using namespace sgp::quant;
using A = sgp::xmodel::pb::AttrValue;

namespace {

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

A::ValueCase type_of(const sgp::xmodel::pb::OPNode& op, const std::string& attr) {
    const auto it = op.op_attr().find(attr);
    return it == op.op_attr().end() ? A::VALUE_NOT_SET : it->second.value_case();
}

std::vector<std::uint32_t> dims_of(const sgp::xmodel::pb::OPNode& op) {
    return {op.output_tensor().tensor_dim().begin(), op.output_tensor().tensor_dim().end()};
}

std::vector<std::string> inputs_of(const sgp::xmodel::pb::OPNode& op) {
    std::vector<std::string> v;
    for (const auto& a : op.args())
        for (const auto& p : a.arg_ops()) v.push_back(a.arg_name() + "=" + p);
    return v;
}

// XIR's ops as a reader of the file computes them, in doubles on NHWC tensors.
struct tensor {
    std::vector<std::uint32_t> dims;
    std::vector<double> v;
};
std::map<std::string, tensor> interpret(const sgp::xmodel::pb::Graph& g, const std::vector<float>& nchw) {
    std::map<std::string, tensor> t;
    auto in = [&](const sgp::xmodel::pb::OPNode& op, const std::string& arg) -> const tensor& {
        for (const auto& a : op.args())
            if (a.arg_name() == arg) return t.at(a.arg_ops(0));
        FAIL("op " << op.op_name() << " has no " << arg);
        throw 0;
    };
    auto ints = [](const sgp::xmodel::pb::OPNode& op, const std::string& a) {
        const auto& v = op.op_attr().at(a).int32_vec().value();
        return std::vector<int>(v.begin(), v.end());
    };
    for (const auto& op : g.op_node()) {
        tensor out;
        out.dims = dims_of(op);
        const std::string& type = op.op_type();
        if (type == "data") {
            const auto H = out.dims[1], W = out.dims[2], C = out.dims[3];
            out.v.resize(H * W * C);
            for (std::uint32_t c = 0; c < C; ++c)
                for (std::uint32_t i = 0; i < H * W; ++i) out.v[i * C + c] = nchw[c * H * W + i];
        } else if (type == "const") {
            const auto& bytes = op.op_attr().at("data").bytes_value().value();
            out.v.resize(bytes.size() / 4);
            for (std::size_t i = 0; i < out.v.size(); ++i) {
                std::uint32_t u = 0;
                for (int b = 0; b < 4; ++b) u |= std::uint32_t{static_cast<unsigned char>(bytes[i * 4 + b])} << (8 * b);
                out.v[i] = std::bit_cast<float>(u);
            }
        } else if (type == "fix") {
            const int fp = op.op_attr().at("fix_point").int32_value();
            out.v = in(op, "input").v;
            for (auto& x : out.v)
                x = x != x ? 0.0 : std::clamp(dpu_round(std::ldexp(x, fp)), -128.0, 127.0) * std::ldexp(1.0, -fp);
        } else if (type == "relu") {
            out.v = in(op, "input").v;
            for (auto& x : out.v) x = std::max(x, 0.0);
        } else if (type == "conv2d" || type == "maxpool2d") {
            const tensor& x = in(op, "input");
            const auto k = ints(op, "kernel"), s = ints(op, "stride"), pad = ints(op, "pad");
            const int H = static_cast<int>(x.dims[1]), W = static_cast<int>(x.dims[2]), C = static_cast<int>(x.dims[3]);
            const int OH = static_cast<int>(out.dims[1]), OW = static_cast<int>(out.dims[2]),
                      OC = static_cast<int>(out.dims[3]);
            REQUIRE(OH == (H + pad[2] + pad[3] - k[1]) / s[1] + 1);
            REQUIRE(OW == (W + pad[0] + pad[1] - k[0]) / s[0] + 1);
            out.v.assign(static_cast<std::size_t>(OH * OW * OC), 0.0);
            const bool conv = type == "conv2d";
            const tensor* w = conv ? &in(op, "weights") : nullptr;
            const tensor* b = conv ? &in(op, "bias") : nullptr;
            for (int oy = 0; oy < OH; ++oy)
                for (int ox = 0; ox < OW; ++ox)
                    for (int o = 0; o < OC; ++o) {
                        double acc = conv ? b->v[static_cast<std::size_t>(o)] : -1e300;
                        for (int ky = 0; ky < k[1]; ++ky)
                            for (int kx = 0; kx < k[0]; ++kx) {
                                const int iy = oy * s[1] + ky - pad[2], ix = ox * s[0] + kx - pad[0];
                                if (iy < 0 || ix < 0 || iy >= H || ix >= W) continue;
                                const auto px = static_cast<std::size_t>((iy * W + ix) * C);
                                if (!conv) {
                                    acc = std::max(acc, x.v[px + static_cast<std::size_t>(o)]);
                                    continue;
                                }
                                for (int c = 0; c < C; ++c)
                                    acc += x.v[px + static_cast<std::size_t>(c)] *
                                           w->v[static_cast<std::size_t>(((o * k[1] + ky) * k[0] + kx) * C + c)];
                            }
                        out.v[static_cast<std::size_t>((oy * OW + ox) * OC + o)] = acc;
                    }
        } else {
            FAIL("unexpected op type " << type);
        }
        t[op.op_name()] = std::move(out);
    }
    return t;
}

// Every op and edge the exporter must write for m, in order, checked against the file.
void check_structure(const qmodel& m, const sgp::xmodel::pb::Graph& g) {
    std::size_t next = 0;
    auto expect = [&](const std::string& name, const std::string& type, std::vector<std::uint32_t> dims,
                      std::vector<std::string> inputs) -> const sgp::xmodel::pb::OPNode& {
        REQUIRE(next < static_cast<std::size_t>(g.op_node_size()));
        const auto& op = g.op_node(static_cast<int>(next++));
        CHECK(op.op_name() == name);
        CHECK(op.op_type() == type);
        CHECK(dims_of(op) == dims);
        CHECK(inputs_of(op) == inputs);
        CHECK(op.output_tensor().tensor_name() == name);
        CHECK(op.output_tensor().data_type() == 4);  // FLOAT
        CHECK(op.output_tensor().tensor_bit_width() == 32);
        return op;
    };
    auto expect_fix = [&](const std::string& of, int fp, std::vector<std::uint32_t> dims) {
        const auto& f = expect(of + "_fix", "fix", dims, {"input=" + of});
        CHECK(type_of(f, "fix_point") == A::kInt32Value);
        CHECK(f.op_attr().at("fix_point").int32_value() == fp);
        CHECK(type_of(f, "bit_width") == A::kInt32Value);
        CHECK(f.op_attr().at("bit_width").int32_value() == 8);
        CHECK(type_of(f, "if_signed") == A::kBoolValue);
        CHECK(type_of(f, "round_mode") == A::kStringValue);
        CHECK(f.op_attr().at("round_mode").string_value() == "DPU_ROUND");
        return of + "_fix";
    };
    std::uint32_t c = static_cast<std::uint32_t>(m.c), h = static_cast<std::uint32_t>(m.h),
                  w = static_cast<std::uint32_t>(m.w);
    const auto& data = expect("input", "data", {1, h, w, c}, {});
    CHECK(type_of(data, "shape") == A::kInt32Vec);
    CHECK(type_of(data, "data_type") == A::kStringValue);
    std::string last = expect_fix("input", m.fp_in, {1, h, w, c});
    for (std::size_t i = 0; i < m.ops.size(); ++i) {
        if (const auto* q = std::get_if<qconv>(&m.ops[i])) {
            const std::string p = "layer" + std::to_string(q->layer);
            const bool flat = q->h == 1 && q->w == 1 && h * w > 1;
            const std::uint32_t kh = flat ? h : static_cast<std::uint32_t>(q->k), kw = flat ? w : kh;
            const std::uint32_t cin = flat ? c : static_cast<std::uint32_t>(q->cin),
                                cout = static_cast<std::uint32_t>(q->cout);
            const auto& wt = expect(p + "_weights", "const", {cout, kh, kw, cin}, {});
            CHECK(type_of(wt, "data") == A::kBytesValue);
            CHECK(wt.op_attr().at("data").bytes_value().value().size() == 4u * cout * kh * kw * cin);
            CHECK(type_of(wt, "shape") == A::kInt32Vec);
            CHECK(type_of(wt, "data_type") == A::kStringValue);
            const auto wf = expect_fix(p + "_weights", q->fp_w, {cout, kh, kw, cin});
            CHECK(type_of(expect(p + "_bias", "const", {cout}, {}), "data") == A::kBytesValue);
            const auto bf = expect_fix(p + "_bias", q->fp_b, {cout});
            const std::uint32_t oh = flat ? 1 : static_cast<std::uint32_t>(q->oh),
                                ow = flat ? 1 : static_cast<std::uint32_t>(q->ow);
            const auto& conv =
                expect(p + "_conv2d", "conv2d", {1, oh, ow, cout}, {"input=" + last, "weights=" + wf, "bias=" + bf});
            for (const char* a : {"kernel", "stride", "dilation", "pad"}) CHECK(type_of(conv, a) == A::kInt32Vec);
            CHECK(conv.op_attr().at("pad").int32_vec().value_size() == 4);
            CHECK(conv.op_attr().at("kernel").int32_vec().value(0) == static_cast<int>(kw));
            CHECK(type_of(conv, "pad_mode") == A::kStringValue);
            last = p + "_conv2d";
            if (q->act == activation::relu) {
                expect(p + "_relu", "relu", {1, oh, ow, cout}, {"input=" + last});
                last = p + "_relu";
            }
            last = expect_fix(last, q->fp_out, {1, oh, ow, cout});
            c = cout, h = oh, w = ow;
        } else {
            const auto& pool = std::get<qmax_pool>(m.ops[i]);
            const std::string p = "layer" + std::to_string(pool.layer);
            h = static_cast<std::uint32_t>(pool.oh), w = static_cast<std::uint32_t>(pool.ow);
            const auto& op = expect(p + "_maxpool2d", "maxpool2d", {1, h, w, c}, {"input=" + last});
            for (const char* a : {"kernel", "stride", "pad"}) CHECK(type_of(op, a) == A::kInt32Vec);
            CHECK(type_of(op, "global") == A::kBoolValue);
            last = expect_fix(p + "_maxpool2d", m.fix_point(i + 1), {1, h, w, c});
        }
    }
    CHECK(next == static_cast<std::size_t>(g.op_node_size()));
    CHECK(g.subg_root().op_name_size() == g.op_node_size());
}

}  // namespace

TEST_CASE("written .xmodel files read back with every op, edge, shape and attribute type, and compute the int8 path") {
    sgp_test::temp_dir dir("xmodel");
    for (std::uint64_t seed = 1; seed <= 40; ++seed) {
        CAPTURE(seed);
        const auto m = sgp_test::random_model(seed);
        const auto path = dir.file("m" + std::to_string(seed) + ".xmodel");
        sgp::xmodel::write(m, path, "random" + std::to_string(seed));
        sgp::xmodel::pb::Graph g;
        REQUIRE(g.ParseFromString(slurp(path)));  // protobuf alone, no sgp reader
        CHECK(g.graph_name() == "random" + std::to_string(seed));
        check_structure(m, g);
        CHECK_NOTHROW(sgp::xmodel::read(path));

        sgp::target::int8_reference ref(m);
        // Imported back, the file gives the same integers.
        const auto back = sgp::xmodel::to_qmodel(sgp::xmodel::read(path), path);
        sgp::target::int8_reference ref_back(back);
        std::vector<float> out(m.outputs()), out_back(back.outputs());
        for (std::uint64_t k = 0; k < 3; ++k) {
            const auto x = sgp_test::random_vector(m.c * m.h * m.w, 77 * seed + k, -3.f, 3.f);
            ref.run(x.data(), out.data());
            ref_back.run(x.data(), out_back.data());
            CHECK(ref_back.last_output() == ref.last_output());
            const auto t = interpret(g, x);
            const auto& y = t.at(g.op_node(g.op_node_size() - 1).op_name());
            REQUIRE(y.v.size() == out.size());
            // The last map is NHWC in the file, [C][H][W] in sgp.
            const std::size_t C = y.dims[3], HW = y.v.size() / C;
            for (std::size_t i = 0; i < y.v.size(); ++i)
                CHECK(y.v[(i % HW) * C + i / HW] == static_cast<double>(out[i]));
        }
    }
}

TEST_CASE("graphs (adds, depthwise, ReLU6, average pools, concats) written, read back and imported compute the same") {
    sgp_test::temp_dir dir("xgraph");
    std::map<std::string, std::size_t> types;
    for (std::uint64_t seed = 1; seed <= 60; ++seed) {
        CAPTURE(seed);
        const auto m = sgp_test::random_graph(seed);
        const auto path = dir.file("g.xmodel");
        sgp::xmodel::write(m, path);
        const auto g = sgp::xmodel::read(path);  // the pre-check: what XIR's reader needs
        for (const auto& op : g.op_node()) ++types[op.op_type()];
        for (const auto& op : g.op_node())
            if (op.op_type() == "depthwise-conv2d") CHECK_FALSE(op.op_attr().count("group"));
        const auto back = sgp::xmodel::to_qmodel(g, path);
        REQUIRE(back.ops.size() == m.ops.size());
        for (std::size_t i = 0; i < m.ops.size(); ++i) {
            CHECK(back.ops[i].index() == m.ops[i].index());
            CHECK(sgp::quant::base_of(back.ops[i]).inputs == sgp::quant::base_of(m.ops[i]).inputs);
            CHECK(sgp::quant::base_of(back.ops[i]).fp_out == sgp::quant::base_of(m.ops[i]).fp_out);
        }
        sgp::target::int8_reference ref(m), ref_back(back);
        std::vector<float> out(m.outputs()), out_back(back.outputs());
        for (std::uint64_t k = 0; k < 3; ++k) {
            const auto x = sgp_test::random_vector(m.c * m.h * m.w, 91 * seed + k, -3.f, 3.f);
            ref.run(x.data(), out.data());
            ref_back.run(x.data(), out_back.data());
            CHECK(ref_back.last_output() == ref.last_output());
        }
        // Byte-determinism, and a file read back and written again is the same file.
        sgp::xmodel::write(back, dir.file("again.xmodel"));
        CHECK(slurp(dir.file("again.xmodel")) == slurp(path));
    }
    for (const char* t : {"add", "depthwise-conv2d", "relu6", "avgpool2d", "mul", "concat", "maxpool2d", "relu"})
        CHECK(types[t] > 3);
    // The average pool's mul must carry the DPU's factor; an add's fix points the DPU's rule.
    const auto m = sgp_test::random_graph(12);
    auto g = sgp::xmodel::to_graph(m);
    for (auto& op : *g.mutable_op_node())
        if (op.op_name().find("_avgpool_scale") != std::string::npos) {
            auto& bytes = *(*op.mutable_op_attr())["data"].mutable_bytes_value()->mutable_value();
            bytes[1] = static_cast<char>(bytes[1] ^ 0x40);
        }
    CHECK_THROWS_WITH_AS(sgp::xmodel::to_qmodel(g, "scaled"), doctest::Contains("the DPU by"), sgp::error);
    auto h = sgp::xmodel::to_graph(m);
    std::string add;  // "layerN": the add's output fix is layerN_add_fix or, after its ReLU, layerN_relu_fix
    for (const auto& op : h.op_node())
        if (op.op_type() == "add") add = op.op_name().substr(0, op.op_name().size() - 4);
    REQUIRE_FALSE(add.empty());
    for (auto& op : *h.mutable_op_node())
        if (op.op_name() == add + "_add_fix" || op.op_name() == add + "_relu_fix")
            (*op.mutable_op_attr())["fix_point"].set_int32_value(40);
    CHECK_THROWS_WITH_AS(sgp::xmodel::to_qmodel(h, "add"), doctest::Contains("eltwise rule"), sgp::error);
}

TEST_CASE("corrupt, truncated and inconsistent .xmodel files are errors naming the file and the problem") {
    sgp_test::temp_dir dir("xmodel-bad");
    const auto m = sgp_test::random_model(5);
    const auto good = dir.file("good.xmodel");
    sgp::xmodel::write(m, good);
    const auto bytes = slurp(good);
    auto write = [&](const std::string& name, const std::string& b) {
        std::ofstream(dir.file(name), std::ios::binary) << b;
        return dir.file(name);
    };
    CHECK_THROWS_WITH_AS(sgp::xmodel::read(dir.file("none.xmodel")), doctest::Contains("none.xmodel: file not found"),
                         sgp::error);
    CHECK_THROWS_WITH_AS(sgp::xmodel::read(write("empty.xmodel", "")), doctest::Contains("empty"), sgp::error);
    CHECK_THROWS_WITH_AS(sgp::xmodel::read(write("half.xmodel", bytes.substr(0, bytes.size() / 2))),
                         doctest::Contains("half.xmodel"), sgp::error);
    CHECK_THROWS_WITH_AS(sgp::xmodel::read(write("text.xmodel", "this is not a graph\n")),
                         doctest::Contains("text.xmodel"), sgp::error);
    auto g = sgp::xmodel::to_graph(m);
    g.mutable_op_node(3)->mutable_args(0)->set_arg_ops(0, "ghost");
    CHECK_THROWS_WITH_AS(sgp::xmodel::validate(g, "edited"), doctest::Contains("reads 'ghost'"), sgp::error);
    auto dup = sgp::xmodel::to_graph(m);
    dup.mutable_op_node(2)->set_op_name(dup.op_node(1).op_name());
    CHECK_THROWS_WITH_AS(sgp::xmodel::validate(dup, "dup"), doctest::Contains("two ops are named"), sgp::error);
    auto nofix = sgp::xmodel::to_graph(m);
    (*nofix.mutable_op_node(1)->mutable_op_attr())["fix_point"].set_string_value("7");
    CHECK_THROWS_WITH_AS(sgp::xmodel::validate(nofix, "nofix"),
                         doctest::Contains("attribute 'fix_point' is a string (field 11), XIR's is an int32"),
                         sgp::error);
    std::ostringstream text;
    sgp::xmodel::describe(sgp::xmodel::read(good), text);
    CHECK(text.str().find("fix_point: int32 ") != std::string::npos);
    CHECK(text.str().find("conv2d") != std::string::npos);
    // Graphs the int8 path cannot run are refused by name.
    // An op XIR accepts (a custom type with its shape and data type) but the int8 path has no form of.
    auto odd = sgp::xmodel::to_graph(m);
    auto& custom = *odd.mutable_op_node(odd.op_node_size() - 2);
    custom.set_op_type("my-activation");
    auto* shape = (*custom.mutable_op_attr())["shape"].mutable_int32_vec();
    for (auto d : custom.output_tensor().tensor_dim()) shape->add_value(static_cast<int>(d));
    (*custom.mutable_op_attr())["data_type"].set_string_value("FLOAT32");
    CHECK_NOTHROW(sgp::xmodel::validate(odd, "odd"));
    CHECK_THROWS_WITH_AS(sgp::xmodel::to_qmodel(odd, "odd"), doctest::Contains("'my-activation' has no int8 form"),
                         sgp::error);
    auto offgrid = sgp::xmodel::to_graph(m);
    (*offgrid.mutable_op_node(2)->mutable_op_attr())["data"].mutable_bytes_value()->mutable_value()->at(1) ^= 0x01;
    CHECK_THROWS_WITH_AS(sgp::xmodel::to_qmodel(offgrid, "offgrid"), doctest::Contains("is not an int8"), sgp::error);
}

// Random mutations of a valid file: every one is read as a valid graph or refused with
// sgp::error, never a crash (run under ASan+UBSan by the sanitize preset). SGP_FUZZ_SECONDS
// makes it a long run (docs/deployment.md gives the figures).
TEST_CASE("fuzz: mutated .xmodel bytes never crash the reader") {
    const auto m = sgp_test::random_model(9);
    const std::string bytes = sgp::xmodel::to_bytes(sgp::xmodel::to_graph(m), "fuzz");
    const char* env = std::getenv("SGP_FUZZ_SECONDS");
    const double seconds = env ? std::atof(env) : 2.0;
    sgp::rng r(123);
    std::size_t runs = 0, accepted = 0, refused = 0;
    const auto t0 = std::chrono::steady_clock::now();
    while (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < seconds) {
        const std::string b = sgp_test::mutate_bytes(bytes, r);
        try {
            const auto g = sgp::xmodel::parse(b, "fuzz");
            std::ostringstream text;
            sgp::xmodel::describe(g, text);
            ++accepted;
        } catch (const sgp::error&) {
            ++refused;
        }
        ++runs;
    }
    MESSAGE("fuzzed the reader for " << seconds << " s: " << runs << " inputs, " << accepted << " read, " << refused
                                     << " refused");
    CHECK(runs == accepted + refused);
    CHECK(refused > 0);
}

// ---- Checks that do not go through sgp's .proto ----------------------------------------------

namespace {

// A minimal protobuf wire-format walker, independent of sgp's schema: a message is a list of
// (field number, wire type, value) where the value is a varint, 4 or 8 bytes, or a
// length-delimited byte run (a string, bytes, a nested message or a packed list).
struct wire_field {
    std::uint32_t number = 0, type = 0;
    std::uint64_t varint = 0;
    std::string bytes;
};
std::uint64_t read_varint(const std::string& b, std::size_t& i) {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        REQUIRE(i < b.size());
        const auto c = static_cast<unsigned char>(b[i++]);
        v |= std::uint64_t{c & 0x7fu} << shift;
        if (c < 0x80) return v;
    }
    FAIL("varint longer than 10 bytes");
    return 0;
}
std::vector<wire_field> fields_of(const std::string& b) {
    std::vector<wire_field> out;
    for (std::size_t i = 0; i < b.size();) {
        const auto key = read_varint(b, i);
        wire_field f;
        f.number = static_cast<std::uint32_t>(key >> 3), f.type = static_cast<std::uint32_t>(key & 7);
        switch (f.type) {
            case 0:
                f.varint = read_varint(b, i);
                break;
            case 1:
                REQUIRE(i + 8 <= b.size());
                f.bytes = b.substr(i, 8), i += 8;
                break;
            case 5:
                REQUIRE(i + 4 <= b.size());
                f.bytes = b.substr(i, 4), i += 4;
                break;
            case 2: {
                const auto n = read_varint(b, i);
                REQUIRE(n <= b.size() - i);
                f.bytes = b.substr(i, n), i += n;
                break;
            }
            default:
                FAIL("wire type " << f.type << " is not used by XIR's format");
                break;
        }
        out.push_back(std::move(f));
    }
    return out;
}
const wire_field* field(const std::vector<wire_field>& fs, std::uint32_t number) {
    for (const auto& f : fs)
        if (f.number == number) return &f;
    return nullptr;
}

}  // namespace

TEST_CASE("wire format, walked without sgp's schema: a const's data is field 12 holding a nested field 1") {
    sgp_test::temp_dir dir("xmodel-wire");
    std::size_t consts = 0, attrs = 0;
    for (std::uint64_t seed = 1; seed <= 20; ++seed) {
        CAPTURE(seed);
        const auto path = dir.file("m.xmodel");
        sgp::xmodel::write(sgp_test::random_model(seed), path);
        for (const auto& node : fields_of(slurp(path))) {
            if (node.number != 5) continue;  // Graph.op_node
            const auto op = fields_of(node.bytes);
            REQUIRE(field(op, 2));
            const std::string type = field(op, 2)->bytes;
            std::map<std::string, std::vector<wire_field>> attr;  // OPNode.op_attr: map entries (key 1, value 2)
            for (const auto& entry : op)
                if (entry.number == 3) {
                    const auto kv = fields_of(entry.bytes);
                    REQUIRE(field(kv, 1));
                    REQUIRE(field(kv, 2));
                    attr[field(kv, 1)->bytes] = fields_of(field(kv, 2)->bytes);
                    CHECK(attr[field(kv, 1)->bytes].size() == 1);  // one value per AttrValue
                    ++attrs;
                }
            REQUIRE(field(op, 5));  // OPNode.output_tensor
            const auto tensor = fields_of(field(op, 5)->bytes);
            std::uint64_t elements = 1;
            for (const auto& t : tensor)
                if (t.number == 2) {  // tensor_dim: packed uint32
                    REQUIRE(t.type == 2);
                    for (std::size_t i = 0; i < t.bytes.size();) elements *= read_varint(t.bytes, i);
                }
            if (type == "const") {
                ++consts;
                REQUIRE(attr.count("data"));
                const auto& data = attr["data"][0];
                CHECK(data.number == 12);  // AttrValue.bytes_value ...
                CHECK(data.type == 2);
                const auto inner = fields_of(data.bytes);  // ... a Bytes message
                REQUIRE(inner.size() == 1);
                CHECK(inner[0].number == 1);
                CHECK(inner[0].type == 2);
                CHECK(inner[0].bytes.size() == 4 * elements);
                REQUIRE(attr.count("shape"));
                REQUIRE(attr.count("data_type"));
                CHECK(attr["shape"][0].number == 14);  // int32 vector
                CHECK(attr["data_type"][0].number == 11);
            }
            if (type == "fix") {
                for (const char* a : {"fix_point", "bit_width", "if_signed", "round_mode"}) REQUIRE(attr.count(a));
                for (const char* a : {"fix_point", "bit_width"}) CHECK(attr[a][0].number == 5);  // int32
                CHECK(attr["if_signed"][0].number == 4);                                         // bool
                CHECK(attr["round_mode"][0].number == 11);                                       // string
            }
            if (type == "conv2d" || type == "maxpool2d")
                for (const char* a : {"kernel", "stride", "pad"}) {
                    REQUIRE(attr.count(a));
                    CHECK(attr[a][0].number == 14);
                }
        }
    }
    CHECK(consts > 0);
    MESSAGE("walked " << consts << " const ops and " << attrs << " attributes");
}

TEST_CASE("export is byte-deterministic, and a file read back and written again is the same file") {
    sgp_test::temp_dir dir("xmodel-det");
    for (std::uint64_t seed = 1; seed <= 20; ++seed) {
        CAPTURE(seed);
        const auto m = sgp_test::random_model(seed);
        sgp::xmodel::write(m, dir.file("a.xmodel"));
        sgp::xmodel::write(sgp_test::random_model(seed), dir.file("b.xmodel"));
        CHECK(slurp(dir.file("a.xmodel")) == slurp(dir.file("b.xmodel")));
        const auto back = sgp::xmodel::to_qmodel(sgp::xmodel::read(dir.file("a.xmodel")), "a");
        sgp::xmodel::write(back, dir.file("c.xmodel"));
        CHECK(slurp(dir.file("c.xmodel")) == slurp(dir.file("a.xmodel")));
    }
}

// Files XIR 3.5's own writer produced from sgp's graphs (tests/xir_fixtures.hpp says how): sgp
// reads each, with XIR's op definitions, XIR's op order, an empty optional input and
// lower-case data types, and computes the same integers as the model the graph came from.
TEST_CASE("files XIR wrote read in sgp and give the int8 outputs of the model they were made from") {
    for (const auto& f : sgp_test::xir_fixture_files) {
        const std::string path =
            std::string(SGP_XIR_FIXTURE_DIR) + "/" + sgp_test::fixture_name(f.seed, f.variant, f.graph);
        CAPTURE(path);
        const auto g = sgp::xmodel::read(path);
        CHECK(g.op_defs_size() > 100);  // XIR's writer stores its registry: this file is XIR's
        bool empty_bias = false, lower = false, reordered = false;
        for (int i = 0; i < g.op_node_size(); ++i) {
            const auto& op = g.op_node(i);
            for (const auto& a : op.args())
                empty_bias = empty_bias || (a.arg_name() == "bias" && a.arg_ops_size() == 0);
            if (const auto it = op.op_attr().find("data_type"); it != op.op_attr().end())
                lower = lower || it->second.string_value() == "float32";
            if (op.op_type() == "data") reordered = reordered || i != 0;
        }
        CHECK(empty_bias == (f.variant == sgp_test::xir_variant::first_conv_without_bias));
        CHECK(lower == (f.variant == sgp_test::xir_variant::lower_case_types));
        const auto m = sgp_test::expected_after(sgp_test::fixture_model(f), f.variant);
        const auto back = sgp::xmodel::to_qmodel(g, path);
        CHECK(back.ops.size() == m.ops.size());
        sgp::target::int8_reference ref(m), ref_back(back);
        std::vector<float> y(m.outputs()), y_back(back.outputs());
        for (std::uint64_t k = 0; k < 5; ++k) {
            const auto x = sgp_test::random_vector(m.c * m.h * m.w, 1000 * f.seed + k, -3.f, 3.f);
            ref.run(x.data(), y.data());
            ref_back.run(x.data(), y_back.data());
            CHECK(ref_back.last_output() == ref.last_output());
        }
        std::ostringstream text;
        sgp::xmodel::describe(g, text);
        CHECK(text.str().find("op definitions stored (XIR's writer)") != std::string::npos);
        if (f.variant == sgp_test::xir_variant::first_conv_without_bias)
            CHECK(text.str().find("bias=(none)") != std::string::npos);
        MESSAGE(path << ": " << g.op_node_size() << " ops" << std::string(reordered ? ", the data op not first" : ""));
    }
}

TEST_CASE("the pre-check refuses, naming the op, what XIR's reader would abort on") {
    const auto m = sgp_test::random_model(2);
    const auto base = sgp::xmodel::to_graph(m);
    auto find = [](sgp::xmodel::pb::Graph& g, const std::string& type) -> sgp::xmodel::pb::OPNode& {
        for (auto& op : *g.mutable_op_node())
            if (op.op_type() == type) return op;
        FAIL("no " << type);
        throw 0;
    };
    auto refused = [&](auto edit, const char* message) {
        auto g = base;
        edit(g);
        CHECK_THROWS_WITH_AS(sgp::xmodel::validate(g, "edited"), doctest::Contains(message), sgp::error);
    };
    refused([](auto& g) { g.mutable_op_node()->SwapElements(0, 1); },
            "which comes after it (XIR needs producers first)");
    refused([&](auto& g) { find(g, "conv2d").mutable_op_attr()->erase("kernel"); },
            "lacks the attribute 'kernel' XIR requires");
    refused([&](auto& g) { (*find(g, "conv2d").mutable_op_attr())["stride"].set_int32_value(1); },
            "attribute 'stride' is an int32 (field 5), XIR's is an int32 vector (field 14)");
    refused([&](auto& g) { (*find(g, "conv2d").mutable_op_attr())["pad"].mutable_int32_vec()->add_value(0); },
            "attribute 'pad' has 5 values, XIR requires 4");
    refused([&](auto& g) { find(g, "conv2d").mutable_args(1)->clear_arg_ops(); },
            "has 0 producers for input 'weights' (XIR requires exactly one)");
    refused([&](auto& g) { find(g, "relu").mutable_args(0)->set_arg_name("x"); },
            "has an input 'x' that XIR's relu lacks");
    refused([&](auto& g) { find(g, "conv2d").mutable_output_tensor()->set_tensor_dim(3, 99); },
            "XIR's shape inference gives");
    refused([&](auto& g) { (*find(g, "conv2d").mutable_op_attr())["pad_mode"].set_string_value("MIRROR"); },
            "pad_mode 'MIRROR' is none of FLOOR, CEIL, SAME, VALID");
    refused([&](auto& g) { (*find(g, "const").mutable_op_attr())["data_type"].set_string_value("32bit float"); },
            "is not XIR's spelling");
    refused([&](auto& g) { (*find(g, "const").mutable_op_attr())["data"].mutable_bytes_value()->set_value("abc"); },
            "holds 3 bytes for its");
    refused([&](auto& g) { find(g, "relu").mutable_output_tensor()->set_data_type(6); }, "invalid output data type");
    refused([&](auto& g) { find(g, "relu").set_op_type("softmax"); },
            "of XIR's type 'softmax', which sgp has no definition of and the file does not define");
    refused([&](auto& g) { find(g, "relu").set_op_type("my-op"); }, "lacks the attribute 'shape' XIR requires");
    refused([](auto& g) { g.mutable_subg_root()->add_subg_child()->set_subgraph_name("empty"); },
            "subgraph 'empty' must hold either ops or subgraphs");
    refused(
        [](auto& g) {
            for (const char* n : {"a", "b"}) {
                auto* c = g.mutable_subg_root()->add_subg_child();
                c->set_subgraph_name(n);
                c->add_op_name("input");
            }
        },
        "op 'input' is in two subgraphs");
    // Found in review against XIR's sources: a pool's dilation is not XIR's (it ignores it),
    // XIR's window arithmetic is int32, a source op of any type needs shape and data_type, a
    // custom type gets XIR's custom rule even if the file stores another definition for it.
    {  // an attribute XIR's pooling does not declare, of any type, is ignored as XIR ignores it
        auto g = base;
        (*find(g, "maxpool2d").mutable_op_attr())["dilation"].set_string_value("2");
        CHECK_NOTHROW(sgp::xmodel::validate(g, "pool with dilation"));
    }
    refused(
        [&](auto& g) {
            auto& pool = find(g, "maxpool2d");
            (*pool.mutable_op_attr())["pad"].mutable_int32_vec()->set_value(0, 0x40000000);
            (*pool.mutable_op_attr())["pad"].mutable_int32_vec()->set_value(1, 0x40000000);
        },
        "overflows XIR's int32");
    refused(
        [&](auto& g) {
            auto& relu = find(g, "relu");
            relu.set_op_type("my-op");
            (*relu.mutable_op_attr())["shape"].mutable_int32_vec()->add_value(1);
            (*relu.mutable_op_attr())["data_type"].set_string_value("FLOAT32");
            relu.mutable_args(0)->set_arg_name("x");
            auto* def = g.add_op_defs();  // a stored definition XIR would not use
            def->set_name("my-op");
            def->add_input_args()->set_name("x");
        },
        "has an input 'x' that XIR's my-op lacks");
    refused(
        [&](auto& g) {
            (*find(g, "relu").mutable_output_tensor()->mutable_tensor_attr())["shape_info"].set_int32_value(1);
        },
        "tensor attribute 'shape_info' is not an int32 vector");
    refused([](auto& g) { (*g.mutable_subg_root()->mutable_subg_attr())["device"].set_int32_value(1); },
            "attribute 'device' is an int32");
    CHECK_NOTHROW(sgp::xmodel::validate(base, "unedited"));
}

TEST_CASE("import: an absent bias is zeros, and fixes the DPU cannot apply are refused") {
    const auto m = sgp_test::random_model(2);
    auto g = sgp::xmodel::to_graph(m);
    // Drop the first conv's bias as XIR writes it: the input listed with no producer (and the
    // bias's const and fix gone).
    std::string bias_fix;
    for (auto& op : *g.mutable_op_node())
        if (op.op_type() == "conv2d") {
            bias_fix = op.args(2).arg_ops(0);
            op.mutable_args(2)->clear_arg_ops();
            break;
        }
    const std::string bias = bias_fix.substr(0, bias_fix.size() - 4);  // "<const>_fix"
    for (int i = g.op_node_size(); i-- > 0;)
        if (g.op_node(i).op_name() == bias_fix || g.op_node(i).op_name() == bias)
            g.mutable_op_node()->DeleteSubrange(i, 1);
    for (int i = g.subg_root().op_name_size(); i-- > 0;)
        if (g.subg_root().op_name(i) == bias_fix || g.subg_root().op_name(i) == bias)
            g.mutable_subg_root()->mutable_op_name()->DeleteSubrange(i, 1);
    // Left in place, the unused bias would be a part of the file the int8 model leaves out.
    auto dangling = sgp::xmodel::to_graph(m);
    for (auto& op : *dangling.mutable_op_node())
        if (op.op_type() == "conv2d") {
            op.mutable_args(2)->clear_arg_ops();
            break;
        }
    CHECK_THROWS_WITH_AS(sgp::xmodel::to_qmodel(dangling, "dangling"),
                         doctest::Contains("is not on the graph from the input"), sgp::error);
    const auto back = sgp::xmodel::to_qmodel(g, "nobias");
    const auto expected = sgp_test::expected_after(m, sgp_test::xir_variant::first_conv_without_bias);
    sgp::target::int8_reference a(back), b(expected);
    std::vector<float> ya(back.outputs()), yb(expected.outputs());
    const auto x = sgp_test::random_vector(m.c * m.h * m.w, 5, -3.f, 3.f);
    a.run(x.data(), ya.data());
    b.run(x.data(), yb.data());
    CHECK(a.last_output() == b.last_output());

    auto edit_fix = [&](const std::string& attr, auto value, const char* message) {
        auto e = sgp::xmodel::to_graph(m);
        for (auto& op : *e.mutable_op_node())
            if (op.op_type() == "fix" && op.op_name().find("conv2d") != std::string::npos) {
                value((*op.mutable_op_attr())[attr]);
                break;
            }
        CHECK_THROWS_WITH_AS(sgp::xmodel::to_qmodel(e, "fixes"), doctest::Contains(message), sgp::error);
    };
    edit_fix(
        "bit_width", [](auto& a) { a.set_int32_value(4); }, "is not signed 8-bit");
    edit_fix(
        "round_mode", [](auto& a) { a.set_string_value("STD_ROUND"); }, "rounds with STD_ROUND");
    edit_fix(
        "fix_point", [](auto& a) { a.set_int32_value(1999999990); }, "implausible fix point");
    edit_fix(
        "fix_point", [](auto& a) { a.set_int32_value(40); }, "outside the DPU's limits");
}

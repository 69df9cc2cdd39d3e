// The .xmodel exporter: files read back with protobuf have every op, edge, shape and attribute
// type of a quantized XIR graph; the graph, interpreted as XIR defines its ops (NHWC, OHWI,
// fix = DPU_ROUND and saturation), computes exactly what the int8 reference computes; corrupt
// and truncated files are clear errors (and the reader is fuzzed for a while).
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
            const auto& bytes = op.op_attr().at("data").bytes_value();
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
            CHECK(wt.op_attr().at("data").bytes_value().size() == 4u * cout * kh * kw * cin);
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
            if (q->relu) {
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
            last = expect_fix(p + "_maxpool2d", m.fp_after(i), {1, h, w, c});
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
    CHECK_THROWS_WITH_AS(sgp::xmodel::read(dir.file("none.xmodel")), doctest::Contains("none.xmodel: cannot open"),
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
    CHECK_THROWS_WITH_AS(sgp::xmodel::validate(nofix, "nofix"), doctest::Contains("no int32 fix_point"), sgp::error);
    std::ostringstream text;
    sgp::xmodel::describe(sgp::xmodel::read(good), text);
    CHECK(text.str().find("fix_point: int32 ") != std::string::npos);
    CHECK(text.str().find("conv2d") != std::string::npos);
    // Graphs the int8 path cannot run are refused by name.
    auto odd = sgp::xmodel::to_graph(m);
    odd.mutable_op_node(odd.op_node_size() - 2)->set_op_type("softmax");
    CHECK_THROWS_WITH_AS(sgp::xmodel::to_qmodel(odd, "odd"), doctest::Contains("'softmax' has no int8 form"),
                         sgp::error);
    auto offgrid = sgp::xmodel::to_graph(m);
    (*offgrid.mutable_op_node(2)->mutable_op_attr())["data"].mutable_bytes_value()->at(1) ^= 0x01;
    CHECK_THROWS_WITH_AS(sgp::xmodel::to_qmodel(offgrid, "offgrid"), doctest::Contains("is not an int8"), sgp::error);
}

// Random mutations of a valid file: every one is read as a valid graph or refused with
// sgp::error, never a crash (run under ASan+UBSan by the sanitize preset). SGP_FUZZ_SECONDS
// makes it a long run (docs/deployment.md gives the figures).
TEST_CASE("fuzz: mutated .xmodel bytes never crash the reader") {
    const auto m = sgp_test::random_model(9);
    std::string bytes;
    REQUIRE(sgp::xmodel::to_graph(m).SerializeToString(&bytes));
    const char* env = std::getenv("SGP_FUZZ_SECONDS");
    const double seconds = env ? std::atof(env) : 2.0;
    sgp::rng r(123);
    std::size_t runs = 0, accepted = 0, refused = 0;
    const auto t0 = std::chrono::steady_clock::now();
    while (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < seconds) {
        std::string b = bytes;
        const int edits = 1 + static_cast<int>(r.next() % 3);
        for (int e = 0; e < edits && !b.empty(); ++e) {
            const std::size_t at = r.next() % b.size();
            switch (r.next() % 9) {
                case 0:
                    b[at] = static_cast<char>(b[at] ^ (1 << (r.next() % 8)));
                    break;
                case 1:
                    b[at] = static_cast<char>(r.next());
                    break;
                case 2:
                    b.resize(at);
                    break;
                case 3:
                    b.insert(at, 1 + r.next() % 16, static_cast<char>(r.next()));
                    break;
                case 4:
                    b.erase(at, 1 + r.next() % 16);
                    break;
                default:
                    b[at] = static_cast<char>(b[at] + 1 - static_cast<int>(r.next() % 3));
                    break;
            }
        }
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

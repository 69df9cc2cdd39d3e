// sgp's .xmodel files against the REAL XIR (and VART), not against sgp's own schema. Built only
// where CMake finds XIR and VART (find_package(xir), find_package(vart)): on a board's sysroot,
// or on a host where they were built from the public Vitis AI sources (docs/deployment.md says
// how it was done for this project; nothing of it is in this repository). CI has neither, so
// there the committed fixtures that XIR wrote (tests/fixtures/xir, read by test_xmodel) stand
// in for this test.
//
// - every graph sgp writes deserializes in XIR; XIR's shape inference, run again on every op,
//   gives the stored shape; every attribute has the type XIR's op definition registers; sgp's
//   table of XIR's op definitions (export/xir_ops.hpp) is XIR's registry;
// - a file XIR's own writer produced from it reads back in sgp and computes the same integers;
// - differential: a graph sgp's pre-check accepts never makes XIR abort (each candidate is
//   loaded by XIR in a child process, since XIR ends the process on a failed check);
// - runtime<Net, dpu_target> with the real XIR and VART: an uncompiled model gets sgp's
//   message; a model with a DPU subgraph creates a real VART runner (VART's dummy runner) and
//   runs through it.
//
// SGP_XIR_FILES=a.xmodel:b.xmodel checks more files (the main job's model, for example);
// SGP_XIR_WRITE_FIXTURES=DIR writes the fixtures of tests/fixtures/xir.
// XIR's headers bring glog, whose CHECK macros would replace doctest's: they come first and
// their macros are dropped before doctest's are defined.
#include <vart/runner.hpp>
#include <vart/tensor_buffer.hpp>
#include <xir/attrs/attr_def.hpp>
#include <xir/graph/graph.hpp>
#include <xir/op/op.hpp>
#include <xir/op/op_def.hpp>
#include <xir/tensor/tensor.hpp>
#undef CHECK
#undef CHECK_EQ
#undef CHECK_NE
#undef CHECK_LT
#undef CHECK_LE
#undef CHECK_GT
#undef CHECK_GE
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <any>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sgp/export/xmodel_import.hpp>
#include <sgp/export/xmodel_reader.hpp>
#include <sgp/export/xmodel_writer.hpp>
#include <sgp/models/mobilenet.hpp>
#include <sgp/models/resnet.hpp>
#include <sgp/sgp.hpp>
#include <sgp/target/dpu_runtime.hpp>
#include <sgp/target/int8_reference.hpp>
#include <sstream>
#include <typeindex>

#include "helpers.hpp"
#include "qmodel_fixtures.hpp"
#include "xir_fixtures.hpp"
#include "xmodel_mutations.hpp"

namespace {

using A = sgp::xmodel::pb::AttrValue;

A::ValueCase case_of(const std::type_index& t) {
    static const std::map<std::type_index, A::ValueCase> cases{
        {typeid(bool), A::kBoolValue},
        {typeid(std::int32_t), A::kInt32Value},
        {typeid(std::uint32_t), A::kUint32Value},
        {typeid(std::int64_t), A::kInt64Value},
        {typeid(std::uint64_t), A::kUint64Value},
        {typeid(float), A::kFloatValue},
        {typeid(double), A::kDoubleValue},
        {typeid(std::string), A::kStringValue},
        {typeid(std::vector<char>), A::kBytesValue},
        {typeid(std::vector<bool>), A::kBoolVec},
        {typeid(std::vector<std::int32_t>), A::kInt32Vec},
        {typeid(std::vector<std::uint32_t>), A::kUint32Vec},
        {typeid(std::vector<std::int64_t>), A::kInt64Vec},
        {typeid(std::vector<std::uint64_t>), A::kUint64Vec},
        {typeid(std::vector<float>), A::kFloatVec},
        {typeid(std::vector<double>), A::kDoubleVec},
        {typeid(std::vector<std::string>), A::kStringVec},
    };
    const auto it = cases.find(t);
    return it == cases.end() ? A::VALUE_NOT_SET : it->second;
}

struct xir_report {
    std::size_t ops = 0, shape_mismatches = 0, type_mismatches = 0, table_mismatches = 0;
};

// sgp's definition of an op type against the one XIR registered.
std::size_t compare_with_registry(const xir::OpDef& xd) {
    const auto* mine = sgp::xmodel::find_xir_op_def(xd.name());
    if (!mine) return 0;
    std::size_t bad = 0;
    auto fail_on = [&](bool wrong, const std::string& what) {
        if (wrong) {
            ++bad;
            MESSAGE("sgp's definition of " << xd.name() << " differs from XIR's: " << what);
        }
    };
    fail_on(mine->inputs.size() != xd.input_args().size(), "number of inputs");
    for (const auto& xa : xd.input_args()) {
        const auto it =
            std::find_if(mine->inputs.begin(), mine->inputs.end(), [&](const auto& in) { return in.name == xa.name; });
        fail_on(it == mine->inputs.end(), "input " + xa.name + " missing");
        if (it != mine->inputs.end())
            fail_on(static_cast<int>(it->occurs) != static_cast<int>(xa.occur_type), "occurrence of input " + xa.name);
    }
    fail_on(mine->attrs.size() != xd.attrs().size(), "number of attributes");
    for (const auto& xa : xd.attrs()) {
        const auto it =
            std::find_if(mine->attrs.begin(), mine->attrs.end(), [&](const auto& a) { return a.name == xa.name; });
        fail_on(it == mine->attrs.end(), "attribute " + xa.name + " missing");
        if (it == mine->attrs.end()) continue;
        fail_on(it->type != case_of(xa.data_type), "type of attribute " + xa.name);
        fail_on(it->required != (xa.occur_type == xir::AttrDef::REQUIRED), "occurrence of attribute " + xa.name);
        if (it->type == A::kInt32Vec)
            fail_on(it->list_length != static_cast<int>(xa.list_length), "length of " + xa.name);
    }
    return bad;
}

// Loads `path` in XIR and checks every op against XIR's own definitions and shape inference.
xir_report check_in_xir(const std::string& path) {
    xir_report r;
    auto g = xir::Graph::deserialize(path);
    for (auto* op : g->topological_sort()) {
        ++r.ops;
        const auto stored = op->get_output_tensor()->get_shape();
        op->shape_infer();
        const auto inferred = op->get_output_tensor()->get_shape();
        if (stored != inferred) {
            ++r.shape_mismatches;
            MESSAGE(path << ": op " << op->get_name() << ": XIR infers another shape than the stored one");
        }
        const auto* def = op->get_opdef();
        for (const auto& a : def->attrs())
            if (op->has_attr(a.name) && std::type_index(op->get_attr(a.name).type()) != a.data_type) {
                ++r.type_mismatches;
                MESSAGE(path << ": op " << op->get_name() << ": attribute " << a.name
                             << " has another type than XIR's");
            }
        r.table_mismatches += compare_with_registry(*def);
    }
    return r;
}

// Loads `path` in XIR in a child process: true when XIR neither aborts nor throws. XIR's
// message goes to `log`.
bool xir_loads(const std::string& path, const std::string& log) {
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        const int err = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(err, 2);
        dup2(open("/dev/null", O_WRONLY), 1);
        std::signal(SIGABRT, SIG_DFL);  // doctest's handler would report a crash of the test
        std::signal(SIGSEGV, SIG_DFL);
        try {
            auto g = xir::Graph::deserialize(path);
            for (auto* op : g->topological_sort()) op->shape_infer();
            g->get_root_subgraph()->children_topological_sort();
        } catch (...) {
            _exit(3);
        }
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

std::vector<std::int32_t> run_int8(const sgp::quant::qmodel& m, std::uint64_t seed) {
    sgp::target::int8_reference ref(m);
    std::vector<float> out(m.outputs());
    std::vector<std::int32_t> all;
    for (std::uint64_t k = 0; k < 3; ++k) {
        const auto x = sgp_test::random_vector(m.c * m.h * m.w, 31 * seed + k, -3.f, 3.f);
        ref.run(x.data(), out.data());
        for (auto v : ref.last_output()) all.push_back(v);
    }
    return all;
}

// The variants of tests/fixtures/xir, made on XIR's side of a graph sgp wrote.
void apply_in_xir(xir::Graph& g, sgp_test::xir_variant v) {
    if (v == sgp_test::xir_variant::lower_case_types) {
        for (auto* op : g.get_ops())
            if (op->get_type() == "const" || op->get_type() == "data")
                op->set_attr<std::string>("data_type", "float32");
    } else if (v == sgp_test::xir_variant::first_conv_without_bias) {
        for (auto* op : g.topological_sort())
            if (op->get_type() == "conv2d") {
                auto* fix = op->get_input_op("bias");
                auto* constant = fix->get_input_op("input");
                op->set_input_ops("bias", {});
                g.remove_op(fix);
                g.remove_op(constant);
                break;
            }
    }
}

}  // namespace

TEST_CASE("real XIR reads every graph sgp writes: shapes, attribute types and op definitions agree") {
    sgp_test::temp_dir dir("xir");
    xir_report total;
    std::size_t files = 0;
    for (std::uint64_t seed = 1; seed <= 200; ++seed) {
        CAPTURE(seed);
        const auto path = dir.file("m" + std::to_string(seed) + ".xmodel");
        for (bool graph : {false, true}) {
            sgp::xmodel::write(graph ? sgp_test::random_graph(seed) : sgp_test::random_model(seed), path);
            const auto r = check_in_xir(path);
            total.ops += r.ops, total.shape_mismatches += r.shape_mismatches;
            total.type_mismatches += r.type_mismatches, total.table_mismatches += r.table_mismatches;
            ++files;
        }
    }
    // Folded networks: ResNet-20 (its option-A shortcuts as strided 1x1 convs) and MobileNetV2.
    sgp::models::resnet20<sgp::input<1, 32, 32>, 10, 4> resnet(3);
    sgp::models::mobilenet_v2<sgp::input<1, 32, 32>, 10, 8> mobilenet(4);
    for (const auto& m : {sgp_test::calibrated_fold(resnet, 1), sgp_test::calibrated_fold(mobilenet, 2)}) {
        const auto path = dir.file("net.xmodel");
        sgp::xmodel::write(m, path);
        const auto r = check_in_xir(path);
        MESSAGE("a folded network of " << m.ops.size() << " int8 ops: " << r.ops << " ops in XIR");
        total.ops += r.ops, total.shape_mismatches += r.shape_mismatches;
        total.type_mismatches += r.type_mismatches, total.table_mismatches += r.table_mismatches;
        ++files;
        CHECK(run_int8(sgp::xmodel::to_qmodel(sgp::xmodel::read(path), path), 7) == run_int8(m, 7));
    }
    if (const char* more = std::getenv("SGP_XIR_FILES")) {
        std::stringstream list(more);
        for (std::string f; std::getline(list, f, ':');) {
            if (f.empty()) continue;
            CAPTURE(f);
            CHECK_NOTHROW(sgp::xmodel::read(f));  // sgp's pre-check accepts it too
            const auto r = check_in_xir(f);
            MESSAGE(f << ": " << r.ops << " ops in XIR");
            total.ops += r.ops, total.shape_mismatches += r.shape_mismatches;
            total.type_mismatches += r.type_mismatches, total.table_mismatches += r.table_mismatches;
            ++files;
        }
    }
    MESSAGE("XIR read " << files << " files, " << total.ops << " ops: " << total.shape_mismatches
                        << " shape mismatches, " << total.type_mismatches << " attribute type mismatches, "
                        << total.table_mismatches << " differences from XIR's op registry");
    CHECK(total.shape_mismatches == 0);
    CHECK(total.type_mismatches == 0);
    CHECK(total.table_mismatches == 0);
}

TEST_CASE("sgp's list of XIR's built-in op types is the registry XIR's writer stores") {
    sgp_test::temp_dir dir("xir-types");
    const auto path = dir.file("m.xmodel");
    sgp::xmodel::write(sgp_test::random_model(1), path);
    xir::Graph::deserialize(path)->serialize(path);
    std::set<std::string> registry,
        mine(sgp::xmodel::xir_builtin_op_types.begin(), sgp::xmodel::xir_builtin_op_types.end());
    const auto g = sgp::xmodel::read(path);
    // Only XIR's own: a custom type an earlier case made XIR register (its generic definition:
    // one repeated input, `shape` and `data_type`, XIR's note) is not one of them.
    for (const auto& d : g.op_defs()) {
        const bool generic =
            d.annotation() == "This operator is not defined by XIR." && d.attrs_size() == 2 && d.input_args_size() == 1;
        if (!generic) registry.insert(d.name());
    }
    for (const auto& t : registry)
        if (!mine.count(t)) MESSAGE("XIR registers '" << t << "', sgp's list lacks it");
    for (const auto& t : mine)
        if (!registry.count(t)) MESSAGE("sgp lists '" << t << "', XIR does not register it");
    CHECK(registry == mine);
}

TEST_CASE("files XIR's own writer produced read back in sgp and compute the same integers") {
    sgp_test::temp_dir dir("xir-rw");
    const char* fixtures = std::getenv("SGP_XIR_WRITE_FIXTURES");
    for (std::uint64_t seed = 1; seed <= 60; ++seed) {
        for (auto v : sgp_test::xir_variants) {
            CAPTURE(seed);
            CAPTURE(sgp_test::variant_name(v));
            const auto m = sgp_test::random_model(seed);
            const auto mine = dir.file("sgp.xmodel"), theirs = dir.file("xir.xmodel");
            sgp::xmodel::write(m, mine);
            auto g = xir::Graph::deserialize(mine);
            apply_in_xir(*g, v);
            g->serialize(theirs);
            const auto back = sgp::xmodel::to_qmodel(sgp::xmodel::read(theirs), theirs);
            CHECK(run_int8(back, seed) == run_int8(sgp_test::expected_after(m, v), seed));
            if (fixtures && sgp_test::is_fixture(seed, v))
                std::filesystem::copy_file(theirs, std::filesystem::path(fixtures) / sgp_test::fixture_name(seed, v),
                                           std::filesystem::copy_options::overwrite_existing);
        }
        // Graphs (adds, depthwise, ReLU6, average pools with their mul, concats), as XIR writes them.
        CAPTURE(seed);
        const auto m = sgp_test::random_graph(seed);
        const auto mine = dir.file("sgp.xmodel"), theirs = dir.file("xir.xmodel");
        sgp::xmodel::write(m, mine);
        xir::Graph::deserialize(mine)->serialize(theirs);
        const auto back = sgp::xmodel::to_qmodel(sgp::xmodel::read(theirs), theirs);
        CHECK(back.ops.size() == m.ops.size());
        CHECK(run_int8(back, seed) == run_int8(m, seed));
        if (fixtures && sgp_test::is_fixture(seed, sgp_test::xir_variant::plain, true))
            std::filesystem::copy_file(
                theirs,
                std::filesystem::path(fixtures) / sgp_test::fixture_name(seed, sgp_test::xir_variant::plain, true),
                std::filesystem::copy_options::overwrite_existing);
    }
}

// Structural edits of valid graphs, each one a way a file can be wrong; whenever sgp's pre-check
// accepts the result, XIR must load it. Reports how often sgp refuses what XIR accepts (sgp is
// stricter there: an inconsistent shape XIR would silently replace, for example).
TEST_CASE("differential: a graph sgp's pre-check accepts never makes XIR abort") {
    sgp_test::temp_dir dir("xir-diff");
    const char* env = std::getenv("SGP_XIR_DIFF_CASES");
    const int cases = env ? std::atoi(env) : 1500;
    sgp::rng r(2024);
    std::size_t both = 0, sgp_only_refused = 0, both_refused = 0, unsafe = 0;
    std::map<std::string, std::size_t> stricter;
    const auto path = dir.file("case.xmodel");
    // Half the cases start from a file XIR wrote (with its op definitions, in its op order).
    std::vector<sgp::xmodel::pb::Graph> written;
    for (std::uint64_t seed = 1; seed <= 20; ++seed) {
        sgp::xmodel::write(sgp_test::random_model(seed), path);
        xir::Graph::deserialize(path)->serialize(path);
        written.push_back(sgp::xmodel::read(path));
    }
    for (int i = 0; i < cases; ++i) {
        auto g = r.next() % 2 ? written[r.next() % written.size()]
                              : sgp::xmodel::to_graph(sgp_test::random_model(1 + r.next() % 50));
        const std::string what = sgp_test::mutate(g, r);
        bool sgp_ok = true;
        std::string bytes = sgp::xmodel::to_bytes(g, "case");
        if (r.next() % 4 == 0) bytes = sgp_test::mutate_bytes(bytes, r);
        std::string refusal;
        try {
            sgp::xmodel::parse(bytes, "case");
        } catch (const sgp::error& e) {
            sgp_ok = false;
            refusal = e.what();
        }
        std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
        const bool xir_ok = xir_loads(path, dir.file("xir.log"));
        if (sgp_ok && !xir_ok) {
            ++unsafe;
            std::ifstream log(dir.file("xir.log"));
            std::string line, reason;
            while (std::getline(log, line))
                if (line.find("FATAL") != std::string::npos || line.find("Check failed") != std::string::npos)
                    reason = line;
            MESSAGE("sgp accepts a graph XIR aborts on: " << what << "; XIR: " << reason);
        }
        both += sgp_ok && xir_ok, both_refused += !sgp_ok && !xir_ok, sgp_only_refused += !sgp_ok && xir_ok;
        if (!sgp_ok && xir_ok) {  // what sgp is stricter about, names and numbers blanked
            std::string kind;
            bool quoted = false, bracket = false;
            for (char c : refusal.substr(refusal.find(':') + 2)) {
                if (c == '\'' && !bracket) {
                    quoted = !quoted;
                    if (quoted) kind += "'_'";
                } else if (c == '[' || c == ']') {
                    bracket = c == '[';
                    if (bracket) kind += "[..]";
                } else if (!quoted && !bracket) {
                    const bool digit = c >= '0' && c <= '9';
                    if (!digit || kind.empty() || kind.back() != 'N') kind += digit ? 'N' : c;
                }
            }
            ++stricter[kind.substr(0, 90)];
        }
    }
    MESSAGE(cases << " edited graphs: " << both << " loaded by both, " << both_refused << " refused by both, "
                  << sgp_only_refused << " refused by sgp only, " << unsafe << " accepted by sgp and aborted by XIR");
    for (const auto& [kind, count] : stricter) MESSAGE("refused by sgp only, " << count << "x: " << kind);
    CHECK(unsafe == 0);
}

namespace {
using namespace sgp::layers;
using tiny_net = sgp::sequential<sgp::input<1, 6, 6>, conv3x3<4, true>, relu, flatten, linear<3, true>>;
}  // namespace

TEST_CASE("dpu_target with the real XIR and VART: sgp's message for an uncompiled model, a real runner otherwise") {
    sgp_test::temp_dir dir("xir-dpu");
    tiny_net net(5);
    auto m = sgp::quant::fold(net);
    sgp::quant::calibrator cal(m, sgp::quant::calibration::max_abs);
    for (std::uint64_t s = 0; s < 4; ++s) cal.observe(sgp_test::random_vector(tiny_net::input_shape.size(), s).data());
    cal.finish();
    const auto path = dir.file("tiny.xmodel");
    sgp::xmodel::write(m, path);
    using R = sgp::runtime<tiny_net, sgp::dpu_target>;
    CHECK_THROWS_WITH_AS(R{path}, doctest::Contains("no DPU subgraph: compile the exported model"), sgp::error);

    // The same graph with one subgraph marked as the DPU's, its `runner` attribute naming a
    // runner library (tests/vart_plugin.cpp, computing with int8_target) as vai_c_xir names
    // the board's: the real VART dlopens it, dpu_target scales, batches and runs images
    // through the real TensorBuffer / execute_async / wait calls, and the scores must be
    // int8_target's bit for bit. (The arithmetic is sgp's here; the API use is checked.)
    auto g = xir::Graph::deserialize(path);
    auto* root = g->get_root_subgraph();
    root->create_children();
    std::set<xir::Subgraph*> all;
    for (auto* child : root->get_children()) all.insert(child);
    auto* dpu = root->merge_children(all);
    dpu->set_attr<std::string>("device", "DPU");
    dpu->set_attr<std::map<std::string, std::string>>("runner", {{"run", SGP_INT8_RUNNER}});
    dpu->set_attr<int>("sgp_test_batch", 3);
    const auto compiled = dir.file("compiled.xmodel");
    g->serialize(compiled);
    R on_dpu(compiled);
    CHECK(on_dpu.batch() == 3);
    CHECK(on_dpu.input_fix_point() == m.fp_in);
    sgp::runtime<tiny_net, sgp::int8_target> on_host(m);
    constexpr std::size_t n = 7, K = tiny_net::output_shape.size();
    const auto x = sgp_test::random_vector(n * tiny_net::input_shape.size(), 99, -1.f, 1.f);
    std::vector<float> y_dpu(n * K), y_host(n * K);
    on_dpu.run(x.data(), y_dpu.data(), n);
    on_host.run(x.data(), y_host.data(), n);
    CHECK(y_dpu == y_host);
}

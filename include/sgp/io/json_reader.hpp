#pragma once
// JSON for sgp's own files (pruning plans, experiment state): nlohmann-json parses and
// writes; json_value is the small tree sgp's code reads, with errors that name the file.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "sgp/core/error.hpp"

namespace sgp {

struct json_value {
    enum class type { null, boolean, number, string, array, object } kind = type::null;
    bool b = false;
    double num = 0;
    std::string str;
    std::vector<json_value> items;
    std::map<std::string, json_value> fields;

    // Member access with an error naming what is missing; `where` prefixes messages.
    const json_value& at(const std::string& key, const std::string& where) const {
        if (kind != type::object) fail(where, "expected an object holding '" + key + "'");
        const auto it = fields.find(key);
        if (it == fields.end()) fail(where, "missing '" + key + "'");
        return it->second;
    }
    double number(const std::string& where) const {
        if (kind != type::number) fail(where, "expected a number");
        return num;
    }
    // A whole number in [0, 2^53] (beyond, doubles skip integers); checked before the cast,
    // which is undefined behaviour for values out of range such as 1e25.
    std::size_t index(const std::string& where) const {
        const double d = number(where);
        if (!(d >= 0 && d <= 9007199254740992.0) || d != std::trunc(d))
            fail(where, "expected a non-negative integer (at most 2^53), found " + std::to_string(d));
        return static_cast<std::size_t>(d);
    }
    const std::string& text(const std::string& where) const {
        if (kind != type::string) fail(where, "expected a string");
        return str;
    }
    const std::vector<json_value>& array(const std::string& where) const {
        if (kind != type::array) fail(where, "expected an array");
        return items;
    }
};

namespace json_detail {
// JSON nested deeper than this is refused: sgp's files nest 4 levels, and the conversion
// below recurses once per level.
inline constexpr int max_depth = 64;

inline json_value from_nlohmann(const nlohmann::json& j, int depth, const std::string& where) {
    if (depth > max_depth) fail(where, "invalid JSON: nested too deeply");
    json_value v;
    switch (j.type()) {
        case nlohmann::json::value_t::null:
        case nlohmann::json::value_t::discarded:
            break;
        case nlohmann::json::value_t::boolean:
            v.kind = json_value::type::boolean;
            v.b = j.get<bool>();
            break;
        case nlohmann::json::value_t::number_integer:
        case nlohmann::json::value_t::number_unsigned:
        case nlohmann::json::value_t::number_float:
            v.kind = json_value::type::number;
            v.num = j.get<double>();
            break;
        case nlohmann::json::value_t::string:
            v.kind = json_value::type::string;
            v.str = j.get<std::string>();
            break;
        case nlohmann::json::value_t::array:
            v.kind = json_value::type::array;
            v.items.reserve(j.size());
            for (const auto& x : j) v.items.push_back(from_nlohmann(x, depth + 1, where));
            break;
        case nlohmann::json::value_t::object:
            v.kind = json_value::type::object;
            for (const auto& [k, x] : j.items()) v.fields[k] = from_nlohmann(x, depth + 1, where);
            break;
        case nlohmann::json::value_t::binary:
            fail(where, "invalid JSON: binary value");
    }
    return v;
}

inline nlohmann::json to_nlohmann(const json_value& v) {
    switch (v.kind) {
        case json_value::type::null:
            return nullptr;
        case json_value::type::boolean:
            return v.b;
        case json_value::type::number:
            if (!std::isfinite(v.num)) return nullptr;  // JSON has no NaN or infinity
            // Whole numbers as integers, so counts read back as written ("3", not "3.0").
            if (std::abs(v.num) < 9007199254740992.0 && v.num == std::trunc(v.num))
                return static_cast<std::int64_t>(v.num);
            return v.num;
        case json_value::type::string:
            return v.str;
        case json_value::type::array: {
            auto a = nlohmann::json::array();
            for (const auto& x : v.items) a.push_back(to_nlohmann(x));
            return a;
        }
        case json_value::type::object: {
            auto o = nlohmann::json::object();
            for (const auto& [k, x] : v.fields) o[k] = to_nlohmann(x);
            return o;
        }
    }
    return nullptr;
}
}  // namespace json_detail

// Writes a value back as JSON text (strings and keys escaped by nlohmann-json).
inline std::string dump(const json_value& v) {
    try {
        return json_detail::to_nlohmann(v).dump();
    } catch (const nlohmann::json::exception& e) {  // a string that is not UTF-8
        fail("JSON output", e.what());
    }
}

// Parses JSON text with nlohmann-json; errors name `where` and the byte offset.
inline json_value parse_json(std::string_view text, const std::string& where) {
    // A depth limit during parsing too: nlohmann's parser keeps its own stack, but the tree
    // it builds would be converted recursively.
    bool too_deep = false;
    const nlohmann::json::parser_callback_t limit = [&](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
        if (depth > json_detail::max_depth) too_deep = true;
        return !too_deep;
    };
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(text.begin(), text.end(), limit);
    } catch (const nlohmann::json::parse_error& e) {
        fail(where, "invalid JSON at byte " + std::to_string(e.byte) + ": " + e.what());
    } catch (const nlohmann::json::exception& e) {
        fail(where, std::string("invalid JSON: ") + e.what());
    }
    if (too_deep) fail(where, "invalid JSON: nested too deeply");
    return json_detail::from_nlohmann(j, 0, where);
}

}  // namespace sgp

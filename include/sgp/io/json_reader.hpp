#pragma once
// A small JSON reader for sgp's own files (pruning plans): a recursive-descent parser into
// a tree of values, with errors that give the file and the byte offset.
#include <cstddef>
#include <cstdio>
#include <map>
#include <memory>
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
    std::size_t index(const std::string& where) const {
        const double d = number(where);
        if (d < 0 || d != static_cast<double>(static_cast<std::size_t>(d)))
            fail(where, "expected a non-negative integer, found " + std::to_string(d));
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

class json_parser {
public:
    json_parser(std::string_view text, std::string where) : s_(text), where_(std::move(where)) {}

    json_value parse() {
        json_value v = value(0);
        skip();
        if (p_ != s_.size()) error("unexpected text after the JSON value");
        return v;
    }

private:
    [[noreturn]] void error(const std::string& what) const {
        fail(where_, "invalid JSON at byte " + std::to_string(p_) + ": " + what);
    }
    void skip() {
        while (p_ < s_.size() && (s_[p_] == ' ' || s_[p_] == '\n' || s_[p_] == '\r' || s_[p_] == '\t')) ++p_;
    }
    bool eat(char c) {
        skip();
        if (p_ < s_.size() && s_[p_] == c) {
            ++p_;
            return true;
        }
        return false;
    }
    void expect(char c) {
        if (!eat(c)) error(std::string("expected '") + c + "'");
    }
    json_value value(int depth) {
        if (depth > 64) error("nested too deeply");
        skip();
        if (p_ >= s_.size()) error("unexpected end");
        json_value v;
        const char c = s_[p_];
        if (c == '{') {
            ++p_;
            v.kind = json_value::type::object;
            if (eat('}')) return v;
            do {
                skip();
                const std::string k = string();
                expect(':');
                v.fields[k] = value(depth + 1);
            } while (eat(','));
            expect('}');
        } else if (c == '[') {
            ++p_;
            v.kind = json_value::type::array;
            if (eat(']')) return v;
            do v.items.push_back(value(depth + 1));
            while (eat(','));
            expect(']');
        } else if (c == '"') {
            v.kind = json_value::type::string;
            v.str = string();
        } else if (s_.substr(p_, 4) == "true" || s_.substr(p_, 5) == "false") {
            v.kind = json_value::type::boolean;
            v.b = s_[p_] == 't';
            p_ += v.b ? 4 : 5;
        } else if (s_.substr(p_, 4) == "null") {
            p_ += 4;
        } else {
            v.kind = json_value::type::number;
            const std::size_t b = p_;
            while (p_ < s_.size() && std::string_view("+-0123456789.eE").find(s_[p_]) != std::string_view::npos) ++p_;
            if (b == p_) error("unexpected character");
            try {
                std::size_t used = 0;
                v.num = std::stod(std::string(s_.substr(b, p_ - b)), &used);
                if (used != p_ - b) throw 0;
            } catch (...) {
                p_ = b;
                error("malformed number");
            }
        }
        return v;
    }
    std::string string() {
        if (p_ >= s_.size() || s_[p_] != '"') error("expected a string");
        ++p_;
        std::string out;
        while (p_ < s_.size() && s_[p_] != '"') {
            char c = s_[p_++];
            if (c == '\\') {
                if (p_ >= s_.size()) break;
                const char e = s_[p_++];
                if (e == 'n')
                    c = '\n';
                else if (e == 't')
                    c = '\t';
                else if (e == 'r')
                    c = '\r';
                else if (e == 'u') {
                    if (p_ + 4 > s_.size()) error("truncated \\u escape");
                    unsigned code = 0;
                    for (int i = 0; i < 4; ++i) {
                        const char h = s_[p_++];
                        const auto digit = std::string_view("0123456789abcdef").find(static_cast<char>(h | 0x20));
                        if (digit == std::string_view::npos) error("bad \\u escape");
                        code = code * 16 + static_cast<unsigned>(digit);
                    }
                    c = static_cast<char>(code);  // sgp writes ASCII only
                } else
                    c = e;
            }
            out += c;
        }
        if (p_ >= s_.size()) error("unterminated string");
        ++p_;
        return out;
    }

    std::string_view s_;
    std::string where_;
    std::size_t p_ = 0;
};

// Writes a value back as JSON text (numbers with 10 significant digits).
inline std::string dump(const json_value& v) {
    switch (v.kind) {
        case json_value::type::null:
            return "null";
        case json_value::type::boolean:
            return v.b ? "true" : "false";
        case json_value::type::number: {
            char b[32];
            std::snprintf(b, sizeof b, "%.10g", v.num);
            return b;
        }
        case json_value::type::string: {
            std::string out = "\"";
            for (char c : v.str) {
                if (c == '"' || c == '\\') out += '\\';
                out += c;
            }
            return out + "\"";
        }
        case json_value::type::array: {
            std::string out = "[";
            for (std::size_t i = 0; i < v.items.size(); ++i) out += (i ? ", " : "") + dump(v.items[i]);
            return out + "]";
        }
        case json_value::type::object: {
            std::string out = "{";
            bool first = true;
            for (const auto& [k, x] : v.fields) {
                out += (first ? "\"" : ", \"") + k + "\": " + dump(x);
                first = false;
            }
            return out + "}";
        }
    }
    return "null";
}

inline json_value parse_json(std::string_view text, const std::string& where) {
    return json_parser(text, where).parse();
}

}  // namespace sgp

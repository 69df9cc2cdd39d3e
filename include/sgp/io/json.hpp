#pragma once
// A minimal JSON writer for result files: objects, arrays, numbers, strings, booleans.
#include <cmath>
#include <cstdio>
#include <string>
#include <string_view>

#include "sgp/io/atomic_file.hpp"

namespace sgp {

class json_writer {
public:
    json_writer& begin_object() { return open('{'); }
    json_writer& end_object() { return close('}'); }
    json_writer& begin_array() { return open('['); }
    json_writer& end_array() { return close(']'); }
    json_writer& key(std::string_view k) {
        comma();
        quote(k);
        s_ += ": ";
        pending_value_ = true;
        return *this;
    }
    json_writer& value(double v) {
        comma();
        if (!std::isfinite(v)) {
            s_ += "null";
        } else {
            char b[32];
            std::snprintf(b, sizeof b, "%.10g", v);
            s_ += b;
        }
        return *this;
    }
    json_writer& value(long long v) {
        comma();
        s_ += std::to_string(v);
        return *this;
    }
    json_writer& value(std::size_t v) {
        comma();
        s_ += std::to_string(v);
        return *this;
    }
    json_writer& value(int v) { return value(static_cast<long long>(v)); }
    json_writer& value(bool v) {
        comma();
        s_ += v ? "true" : "false";
        return *this;
    }
    json_writer& value(std::string_view v) {
        comma();
        quote(v);
        return *this;
    }
    json_writer& value(const char* v) { return value(std::string_view(v)); }
    // Inserts already-formatted JSON (e.g. a stored report).
    json_writer& value_raw(std::string_view json) {
        comma();
        s_ += json;
        return *this;
    }
    template <class T>
    json_writer& field(std::string_view k, const T& v) {
        key(k);
        return value(v);
    }
    const std::string& str() const { return s_; }
    void save(const std::string& path) const { write_file_atomic(path, s_ + "\n"); }

private:
    json_writer& open(char c) {
        comma();
        s_ += c;
        first_ = true;
        return *this;
    }
    json_writer& close(char c) {
        s_ += c;
        first_ = false;
        return *this;
    }
    void comma() {
        if (pending_value_) {
            pending_value_ = false;
            return;
        }
        if (!first_ && !s_.empty()) s_ += ", ";
        first_ = false;
    }
    void quote(std::string_view v) {
        s_ += '"';
        for (char c : v) {
            if (c == '"' || c == '\\') {
                s_ += '\\';
                s_ += c;
            } else if (static_cast<unsigned char>(c) < 0x20) {
                char b[8];
                std::snprintf(b, sizeof b, "\\u%04x", c);
                s_ += b;
            } else {
                s_ += c;
            }
        }
        s_ += '"';
    }
    std::string s_;
    bool first_ = true, pending_value_ = false;
};

}  // namespace sgp

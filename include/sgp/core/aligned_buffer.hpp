#pragma once
// A float (or other trivial) buffer on 64-byte aligned memory, zero-initialised. Sized
// once at set-up from compile-time capacities; the hot paths never reallocate it.
#include <cstddef>
#include <cstring>
#include <memory>
#include <new>
#include <type_traits>

namespace sgp {

inline constexpr std::size_t buffer_alignment = 64;

template <class T>
class aligned_buffer {
    static_assert(std::is_trivially_copyable_v<T>, "aligned_buffer holds trivial types only");

    struct deleter {
        void operator()(T* p) const { ::operator delete[](p, std::align_val_t{buffer_alignment}); }
    };

public:
    aligned_buffer() = default;
    explicit aligned_buffer(std::size_t n) { resize(n); }
    aligned_buffer(const aligned_buffer& o) : aligned_buffer(o.size_) {
        if (size_) std::memcpy(data(), o.data(), size_ * sizeof(T));
    }
    aligned_buffer& operator=(const aligned_buffer& o) {
        if (this != &o) {
            if (size_ != o.size_) resize(o.size_);
            if (size_) std::memcpy(data(), o.data(), size_ * sizeof(T));
        }
        return *this;
    }
    aligned_buffer(aligned_buffer&&) noexcept = default;
    aligned_buffer& operator=(aligned_buffer&&) noexcept = default;

    // Reallocates (contents zeroed) only when the size changes.
    void resize(std::size_t n) {
        if (n == size_) return;
        ptr_.reset();
        size_ = 0;
        if (n) {
            // Round the allocation up so SIMD loops may read a full vector past the end.
            const std::size_t bytes = (n * sizeof(T) + buffer_alignment - 1) / buffer_alignment * buffer_alignment;
            ptr_.reset(static_cast<T*>(::operator new[](bytes, std::align_val_t{buffer_alignment})));
            std::memset(static_cast<void*>(ptr_.get()), 0, bytes);
            size_ = n;
        }
    }
    // Grows (never shrinks) to at least n elements.
    void reserve(std::size_t n) {
        if (n > size_) resize(n);
    }
    void fill(T v) {
        for (std::size_t i = 0; i < size_; ++i) ptr_.get()[i] = v;
    }

    T* data() { return ptr_.get(); }
    const T* data() const { return ptr_.get(); }
    std::size_t size() const { return size_; }
    T& operator[](std::size_t i) { return ptr_.get()[i]; }
    const T& operator[](std::size_t i) const { return ptr_.get()[i]; }
    T* begin() { return data(); }
    T* end() { return data() + size_; }
    const T* begin() const { return data(); }
    const T* end() const { return data() + size_; }

private:
    std::unique_ptr<T[], deleter> ptr_;
    std::size_t size_ = 0;
};

}  // namespace sgp

namespace sgp {

// Memory that belongs to one network object (activations, gradients, scratch) and the batch
// size it is sized for: a copy of the network starts without it and sizes its own at its
// next reserve, so that copying a trained network (an undo point in the pruning rounds, a
// second trainer) copies weights, not batches of activations (MobileNetV2 at batch 256: 3 GB).
template <class T>
class transient_buffer : public aligned_buffer<T> {
public:
    transient_buffer() = default;
    transient_buffer(const transient_buffer&) : aligned_buffer<T>() {}
    transient_buffer& operator=(const transient_buffer& o) {
        if (this != &o) aligned_buffer<T>::operator=(aligned_buffer<T>());
        return *this;
    }
    transient_buffer(transient_buffer&&) noexcept = default;
    transient_buffer& operator=(transient_buffer&&) noexcept = default;
};

// The batch a network object's transient buffers are sized for: 0 in a copy.
struct transient_capacity {
    std::size_t value = 0;
    transient_capacity() = default;
    transient_capacity(const transient_capacity&) {}
    transient_capacity& operator=(const transient_capacity& o) {
        if (this != &o) value = 0;
        return *this;
    }
    transient_capacity(transient_capacity&&) noexcept = default;
    transient_capacity& operator=(transient_capacity&&) noexcept = default;
};

}  // namespace sgp

// expect: deleted function.*batch_loader
// A loader over a temporary data set (e.g. d.head(n)) would keep a dangling pointer.
#include <sgp/data/loader.hpp>
void f(const sgp::dataset& d) {
    sgp::batch_loader loader(d.head(10), {});
}

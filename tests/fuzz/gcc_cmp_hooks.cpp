// GCC's -fsanitize-coverage=trace-cmp also traces floating-point comparisons, which
// libFuzzer (built for clang's integer-only tracing) does not define: they carry no
// feedback here.
extern "C" {
void __sanitizer_cov_trace_cmpf(float, float) {}
void __sanitizer_cov_trace_cmpd(double, double) {}
}

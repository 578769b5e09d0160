//! Shared helpers of the ispmux benchmarks (see `perf/run`).

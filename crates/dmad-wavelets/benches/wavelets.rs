//! Criterion benches of dmad-wavelets (filled in below).
fn main() {}

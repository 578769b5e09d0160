//! LDP (RFC 5036), sans-IO: the PDU codec (`wire`) and the TCP stream framer (`framer`).

pub mod framer;
pub mod fuzzing;
pub mod wire;

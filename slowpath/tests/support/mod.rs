//! Helpers shared by the slow path's integration tests (`mod support;` in a test file).

#![allow(dead_code)]

pub mod pcap;

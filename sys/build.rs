//! Generates DPDK bindings and compiles the C shim for DPDK's static inline functions.
//!
//! The full `pkg-config --cflags libdpdk` output is passed to both clang (bindgen) and the C
//! compiler: it carries `-include rte_config.h` and `-march=...`, which the pkg-config crate
//! does not expose and without which the inline intrinsics do not compile.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn pkg_config(args: &[&str]) -> Vec<String> {
    let out = Command::new("pkg-config")
        .args(args)
        .arg("libdpdk")
        .output()
        .expect("pkg-config not found: install pkg-config and libdpdk-dev");
    assert!(
        out.status.success(),
        "pkg-config libdpdk failed: install libdpdk-dev (DPDK 22.11): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

fn main() {
    println!("cargo:rerun-if-changed=shim/shim.c");
    println!("cargo:rerun-if-changed=shim/shim.h");
    println!("cargo:rerun-if-changed=build.rs");

    let cflags = pkg_config(&["--cflags"]);

    let mut build = cc::Build::new();
    build.file("shim/shim.c").opt_level(3).warnings(false);
    for f in &cflags {
        build.flag(f);
    }
    build.compile("ispmux_shim");

    // Dynamic linking against Debian's shared objects; net_ring is not part of the pkg-config
    // set but gives tests exact frame injection through rte_eth_from_rings.
    for f in pkg_config(&["--libs"]) {
        if let Some(dir) = f.strip_prefix("-L") {
            println!("cargo:rustc-link-search=native={dir}");
        } else if let Some(lib) = f.strip_prefix("-l") {
            println!("cargo:rustc-link-lib={lib}");
        }
    }
    println!("cargo:rustc-link-lib=rte_net_ring");
    println!("cargo:rustc-link-lib=rte_net");

    let bindings = bindgen::Builder::default()
        .header("shim/shim.h")
        .clang_args(cflags.iter())
        .allowlist_function(
            "ispmux_.*|rte_eal_.*|rte_eth_.*|rte_pktmbuf_.*|rte_mempool_.*|rte_ring_.*|rte_lcore_.*|rte_socket_id|rte_strerror|rte_vdev_.*|rte_hash_.*|rte_malloc_get_socket_stats|rte_get_.*|rte_version|rte_delay_us_.*|rte_mbuf_.*|rte_meter_trtcm_profile_config|rte_meter_trtcm_config",
        )
        .blocklist_type("rte_l2tpv2.*|rte_flow_item_l2tpv2.*")
        .allowlist_var("RTE_.*|RING_F_.*|MEMPOOL_F_.*|ETH_.*")
        .layout_tests(false)
        .derive_default(true)
        .no_debug("rte_flow_item_gtp_psc")
        .generate_comments(false)
        .generate()
        .expect("bindgen failed on DPDK headers");
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    bindings
        .write_to_file(out.join("bindings.rs"))
        .expect("write bindings");
}

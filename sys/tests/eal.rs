//! EAL-backed tests of the safe layer. EAL initialises once per process, so these run under
//! cargo-nextest (a process per test); under plain `cargo test` only the first would pass.

use std::sync::Arc;

use ispmux_sys::{Burst, Eal, Mempool, Port, PortConfig, Ring, RingMode};

fn eal(extra: &[&str]) -> Eal {
    let mut args = vec![
        "-l",
        "0",
        "--no-huge",
        "--no-shconf",
        "--no-pci",
        "-m",
        "256",
        "--log-level",
        "lib.*:warning",
    ];
    args.extend_from_slice(extra);
    Eal::init(&args).expect("EAL init")
}

fn frame(i: u8, len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[..6].copy_from_slice(&[0x02, 0, 0, 0, 0, i]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 1, i]);
    f[12] = 0x08;
    for (k, b) in f.iter_mut().enumerate().skip(14) {
        *b = (k as u8).wrapping_mul(i);
    }
    f
}

#[test]
fn ring_port_injects_and_reads_back_exact_frames() {
    let eal = eal(&[]);
    assert!(ispmux_sys::version().starts_with("DPDK 22.11"));
    let pool = Arc::new(Mempool::pktmbuf("pool", 2047, 0, 2176, 0).expect("pool"));
    let rx = Ring::new("rx0", 1024, RingMode::SingleProducerSingleConsumer).expect("ring");
    let tx = Ring::new("tx0", 1024, RingMode::SingleProducerSingleConsumer).expect("ring");
    let id = Ring::eth_port("net_ring_t0", &[&rx], &[&tx]).expect("port");
    assert_eq!(eal.port_count(), 1);
    let cfg = PortConfig {
        rx_desc: 256,
        tx_desc: 256,
        ..PortConfig::default()
    };
    let port = Port::start(id, &cfg, pool.clone()).expect("start");
    assert!(port.link().expect("link").up);

    let mut inject = Burst::new();
    for i in 0..40u8 {
        inject
            .push(
                pool.alloc_from(&frame(i, 60 + usize::from(i)))
                    .expect("mbuf"),
            )
            .expect("room");
    }
    assert_eq!(rx.enqueue_burst(&mut inject), 40);

    let mut rxq = port.rx_queue(0).expect("rxq");
    let mut txq = port.tx_queue(0).expect("txq");
    assert!(port.rx_queue(1).is_err());
    let mut b = Burst::new();
    let mut got = 0;
    while got < 40 {
        got += rxq.rx_burst(&mut b, 32);
    }
    assert_eq!(b.len(), 40);
    for (i, m) in b.as_slice().iter().enumerate() {
        assert_eq!(m.data(), &frame(i as u8, 60 + i)[..]);
    }
    assert_eq!(txq.tx_burst(&mut b), 40);
    assert!(b.is_empty());
    let mut out = Burst::new();
    assert_eq!(tx.dequeue_burst(&mut out, 64), 40);
    for (i, m) in out.as_slice().iter().enumerate() {
        assert_eq!(m.data(), &frame(i as u8, 60 + i)[..]);
    }
    let st = port.stats().expect("stats");
    assert_eq!((st.ipackets, st.opackets), (40, 40));
    assert!(!port.xstats().expect("xstats").is_empty());
    assert_eq!(out.clear(), 40);
    assert_eq!(pool.in_use(), 0, "every mbuf back in the pool");
}

#[test]
fn mbuf_prepend_adj_respect_bounds() {
    let _eal = eal(&[]);
    let pool = Mempool::pktmbuf("p", 63, 0, 2176, 0).expect("pool");
    let mut m = pool.alloc_from(&[1, 2, 3, 4]).expect("mbuf");
    let head = m.headroom();
    assert!(m.prepend(head + 1).is_none());
    m.prepend(4).expect("room")[..4].copy_from_slice(&[0x88, 0x47, 0, 1]);
    assert_eq!(m.data(), &[0x88, 0x47, 0, 1, 1, 2, 3, 4]);
    assert_eq!(m.pkt_len(), 8);
    assert!(m.adj(6));
    assert_eq!(m.data(), &[3, 4]);
    assert!(!m.adj(3));
    assert!(m.trim(1));
    assert_eq!(m.data(), &[3]);
    drop(m);
    assert_eq!(pool.in_use(), 0);
}

#[test]
fn null_ports_stop_and_restart() {
    let _eal = eal(&["--vdev", "net_null0", "--vdev", "net_null1"]);
    let pool = Arc::new(Mempool::pktmbuf("pool", 4095, 64, 2176, 0).expect("pool"));
    let id = Port::id_by_name("net_null0").expect("id");
    assert!(Port::id_by_name("net_null9").is_err());
    let port = Port::start(id, &PortConfig::default(), pool.clone()).expect("start");
    let mut rxq = port.rx_queue(0).expect("rxq");
    let mut b = Burst::new();
    assert!(rxq.rx_burst(&mut b, 32) > 0);
    port.stop().expect("stop");
    b.clear();
    port.restart().expect("restart");
    assert!(rxq.rx_burst(&mut b, 32) > 0);
    b.clear();
    drop(port);
    assert_eq!(pool.in_use(), 0);
}

#[test]
fn second_init_is_refused() {
    let _eal = eal(&[]);
    assert!(matches!(
        Eal::init(&["--no-huge"]),
        Err(ispmux_sys::Error::EalAlreadyInitialised)
    ));
}

//! An IEEE 802 MAC address: the subscriber's identity on the access network (claim 20).
//! The slow path uses the fast path's type, so bindings cross the seam unconverted.

pub use ispmux_dataplane::wire::ethernet::MacAddrParseError as MacParseError;
pub use ispmux_dataplane::wire::MacAddr;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_canonically() {
        let m: MacAddr = "02-00-5E-10-00-01".parse().expect("dash form");
        assert_eq!(m.to_string(), "02:00:5e:10:00:01");
        assert_eq!(m, "02:00:5e:10:00:01".parse().expect("colon form"));
        for bad in [
            "",
            "02:00:5e:10:00",
            "02:00:5e:10:00:01:02",
            "2:00:5e:10:00:01",
            "zz:00:5e:10:00:01",
        ] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad}");
        }
    }
}

//! The oracle shared by the `radius_codec` fuzz target and the corpus test: any octets go
//! through the codec, the authenticator checks and the engine (as a NAS request and as a
//! server answer) without panicking, and what parses re-encodes to the same octets.

use std::time::Instant;

use ispmux_conf::radius::RadiusConfig;

use super::crypto;
use super::engine::{Engine, Input, Listener, Now};
use super::packet::{self, Packet};

const CFG: &str = r#"
[radius]
listen_auth = "127.0.0.1:1812"
listen_acct = "127.0.0.1:1813"
[[radius.nas]]
name = "n"
address = "127.0.0.0/8"
secret = "s"
[radius.master]
name = "m"
home_servers = [{ address = "127.0.0.2", secret = "m" }]
[[radius.client_sp]]
name = "c"
realms = ["c"]
virtual_user = "v"
virtual_password = "p"
home_servers = [{ address = "127.0.0.3", secret = "c" }]
capacity = { ports = 1 }
"#;

/// Runs one input; an `Err` is a bug found.
pub fn codec_one(data: &[u8]) -> Result<(), String> {
    if let Ok(p) = Packet::parse(data) {
        let raw = packet::frame(data).map_err(|e| format!("parsed but not framed: {e}"))?;
        let again = p
            .encode_with(&p.authenticator)
            .map_err(|e| format!("parsed but not encodable: {e}"))?;
        if again != raw {
            return Err("re-encoding differs from the framed octets".into());
        }
        let _ = crypto::check_message_authenticator(raw, b"s", None);
        let _ = crypto::check_message_authenticator(raw, b"s", Some(&[1; 16]));
        let _ = crypto::check_request_authenticator(raw, b"s");
        let _ = crypto::check_response_authenticator(raw, b"s", &[1; 16]);
        for a in &p.attributes {
            let _ = crypto::reveal_password(&a.value, b"s", &p.authenticator);
        }
    }
    let cfg = RadiusConfig::from_toml_file_text(CFG).map_err(|e| e.to_string())?;
    let now = Now {
        mono: Instant::now(),
        unix: 0,
    };
    let mut e = Engine::new(&cfg, now.mono).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for listener in [Listener::Auth, Listener::Acct] {
        e.handle(
            now,
            Input::Nas {
                listener,
                from: ([127, 0, 0, 9], 5000).into(),
                data,
            },
            &mut out,
        );
    }
    e.handle(
        now,
        Input::Peer {
            slot: 0,
            from: ([127, 0, 0, 2], 1812).into(),
            data,
        },
        &mut out,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CI runs the fuzz seed corpus through the oracle without a fuzzer.
    #[test]
    fn seed_corpus_passes_the_oracle() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/seeds/radius_codec");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).expect("corpus dir") {
            let path = entry.expect("entry").path();
            let data = std::fs::read(&path).expect("read");
            codec_one(&data).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            // Every prefix too: truncation is the commonest malformation.
            for k in 0..data.len() {
                codec_one(&data[..k]).unwrap_or_else(|e| panic!("{}[..{k}]: {e}", path.display()));
            }
            n += 1;
        }
        assert!(n >= 5, "seed corpus has {n} files");
    }

    /// Seeds mutated the way a fuzzer starts (bit flips, overwritten, inserted and removed
    /// octets); `ISPMUX_FUZZ_ROUNDS` runs more of them.
    #[test]
    fn mutated_seeds_pass_the_oracle() {
        use rand::{Rng, SeedableRng};
        let rounds: usize = std::env::var("ISPMUX_FUZZ_ROUNDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(3000);
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/seeds/radius_codec");
        let seeds: Vec<Vec<u8>> = std::fs::read_dir(dir)
            .expect("seeds")
            .map(|e| std::fs::read(e.expect("entry").path()).expect("read"))
            .collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(2865);
        for round in 0..rounds {
            let mut d = seeds[round % seeds.len()].clone();
            for _ in 0..rng.gen_range(1..6) {
                let at = rng.gen_range(0..=d.len());
                match rng.gen_range(0..4) {
                    0 if at < d.len() => d[at] ^= 1 << rng.gen_range(0..8),
                    1 if at < d.len() => d[at] = rng.gen(),
                    2 => d.insert(at, rng.gen()),
                    _ if at < d.len() => {
                        d.remove(at);
                    }
                    _ => {}
                }
            }
            // Keep the length field consistent half of the time, so attribute parsing is
            // reached rather than stopped at the header.
            if round % 2 == 0 && d.len() >= 4 && d.len() <= 4096 {
                let l = (d.len() as u16).to_be_bytes();
                d[2] = l[0];
                d[3] = l[1];
            }
            if let Err(e) = codec_one(&d) {
                panic!("round {round}, input {d:02x?}: {e}");
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn random_octets_pass_the_oracle(data in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            proptest::prop_assert_eq!(codec_one(&data), Ok(()));
        }
    }
}

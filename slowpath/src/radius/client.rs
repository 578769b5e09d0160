//! A small blocking RADIUS client (the project's own NAS for tests and tools): builds
//! requests, retransmits, and checks the answer's authenticators.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use rand::RngCore;

use super::attr;
use super::crypto::{self, CryptoError, MessageAuth};
use super::packet::{Code, EncodeError, Packet};

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("radius client: {0}")]
    Io(#[from] std::io::Error),
    #[error("radius client: {0}")]
    Encode(#[from] EncodeError),
    #[error("radius client: {0}")]
    Password(#[from] CryptoError),
    #[error("radius client: no valid answer after {0} tries")]
    Timeout(u32),
}

/// A NAS talking to one server (or proxy).
pub struct Client {
    sock: UdpSocket,
    auth: SocketAddr,
    acct: SocketAddr,
    secret: Vec<u8>,
    next_id: u8,
    tries: u32,
    /// Answers with a bad authenticator or Message-Authenticator, ignored.
    pub bad_answers: u64,
}

impl Client {
    /// Binds to `local` (port 0 for any) and talks to `auth`/`acct`.
    pub fn new(
        local: SocketAddr,
        auth: SocketAddr,
        acct: SocketAddr,
        secret: &[u8],
        timeout: Duration,
        tries: u32,
    ) -> Result<Client, ClientError> {
        let sock = UdpSocket::bind(local)?;
        sock.set_read_timeout(Some(timeout))?;
        let mut id = [0u8; 1];
        rand::thread_rng().fill_bytes(&mut id);
        Ok(Client {
            sock,
            auth,
            acct,
            secret: secret.to_vec(),
            next_id: id[0],
            tries: tries.max(1),
            bad_answers: 0,
        })
    }

    /// The local address requests come from.
    pub fn local_addr(&self) -> Result<SocketAddr, ClientError> {
        Ok(self.sock.local_addr()?)
    }

    /// An Access-Request with Message-Authenticator and a hidden User-Password.
    pub fn access_request(&mut self, user: &str, password: &str) -> Result<Packet, ClientError> {
        self.next_id = self.next_id.wrapping_add(1);
        let mut auth = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut auth);
        let mut p = Packet::new(Code::ACCESS_REQUEST, self.next_id, auth);
        crypto::add_message_authenticator(&mut p);
        p.push(attr::USER_NAME, user.as_bytes().to_vec());
        let hidden = crypto::hide_password(password.as_bytes(), &self.secret, &auth)?;
        p.push(attr::USER_PASSWORD, hidden);
        p.push(attr::NAS_IP_ADDRESS, vec![127, 0, 0, 1]);
        p.push(attr::NAS_PORT, 1u32.to_be_bytes().to_vec());
        Ok(p)
    }

    /// An Accounting-Request (the authenticator is computed when sent).
    pub fn accounting_request(
        &mut self,
        user: &str,
        status: u32,
        session_id: &str,
        session_time: u32,
    ) -> Packet {
        self.next_id = self.next_id.wrapping_add(1);
        let mut p = Packet::new(Code::ACCOUNTING_REQUEST, self.next_id, [0; 16]);
        p.push(attr::USER_NAME, user.as_bytes().to_vec());
        p.push(attr::ACCT_STATUS_TYPE, status.to_be_bytes().to_vec());
        p.push(attr::ACCT_SESSION_ID, session_id.as_bytes().to_vec());
        p.push(attr::NAS_IP_ADDRESS, vec![127, 0, 0, 1]);
        if status != attr::ACCT_START {
            p.push(attr::ACCT_SESSION_TIME, session_time.to_be_bytes().to_vec());
            p.push(attr::ACCT_INPUT_OCTETS, 1000u32.to_be_bytes().to_vec());
            p.push(attr::ACCT_OUTPUT_OCTETS, 2000u32.to_be_bytes().to_vec());
        }
        p
    }

    /// Sends `p` (to the auth or acct address by its code) and waits for a valid answer,
    /// retransmitting the same octets on timeout.
    pub fn exchange(&mut self, p: &Packet) -> Result<Packet, ClientError> {
        let bytes = crypto::encode_request(p, &self.secret)?;
        let mut req_auth = [0u8; 16];
        req_auth.copy_from_slice(bytes.get(4..20).unwrap_or(&[0; 16]));
        let to = if p.code == Code::ACCOUNTING_REQUEST {
            self.acct
        } else {
            self.auth
        };
        let mut buf = [0u8; 4096];
        for _ in 0..self.tries {
            self.sock.send_to(&bytes, to)?;
            loop {
                let (n, _) = match self.sock.recv_from(&mut buf) {
                    Ok(x) => x,
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        break
                    }
                    Err(e) => return Err(e.into()),
                };
                let data = buf.get(..n).unwrap_or_default();
                let Ok(r) = Packet::parse(data) else {
                    self.bad_answers += 1;
                    continue;
                };
                if r.identifier != p.identifier {
                    continue;
                }
                if !crypto::check_response_authenticator(data, &self.secret, &req_auth)
                    || crypto::check_message_authenticator(data, &self.secret, Some(&req_auth))
                        == MessageAuth::Invalid
                {
                    self.bad_answers += 1;
                    continue;
                }
                return Ok(r);
            }
        }
        Err(ClientError::Timeout(self.tries))
    }

    /// Logs a user on; the answer's code.
    pub fn authenticate(&mut self, user: &str, password: &str) -> Result<Packet, ClientError> {
        let p = self.access_request(user, password)?;
        self.exchange(&p)
    }

    /// Sends accounting; the answer.
    pub fn account(
        &mut self,
        user: &str,
        status: u32,
        session_id: &str,
        session_time: u32,
    ) -> Result<Packet, ClientError> {
        let p = self.accounting_request(user, status, session_id, session_time);
        self.exchange(&p)
    }
}

//! Session tickets and the session cache: what lets a returning client
//! resume instead of paying for a full handshake.
//!
//! - **Tickets** are sealed with a key that rotates every
//!   [`ROTATE_EVERY`]. Each period's key is derived from a random secret
//!   made once per process (per frontend), so every worker computes the
//!   same keys with nothing shared but that read-only secret: a ticket
//!   issued by one worker resumes on any other, and nothing is locked.
//!   A ticket is accepted during its own period and the next one.
//! - **The session cache** (TLS 1.2 session ids, and TLS 1.3 when tickets
//!   are off) is in thread-local storage, one copy per worker: what one
//!   worker stores or takes travels to every other worker as a cross-core
//!   message after the handshake, so a resumption by session id succeeds
//!   on any worker, and a handshake reads only its own worker's copy.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, Salt};
use rustls::server::{ProducesTickets, StoresServerSessions};
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::time::{SystemTime, UNIX_EPOCH};

/// How long one ticket key is used to seal new tickets.
pub(crate) const ROTATE_EVERY: u64 = 3600;

/// Ticket keys of one frontend.
#[derive(Debug)]
pub(crate) struct Tickets {
    secret: [u8; 32],
}

impl Tickets {
    /// New keys from the system's random source.
    pub(crate) fn new() -> Result<Tickets, String> {
        let mut secret = [0u8; 32];
        aws_lc_rs::rand::fill(&mut secret)
            .map_err(|_| "the random source failed while making ticket keys".to_string())?;
        Ok(Tickets { secret })
    }

    /// The key of rotation period `epoch`.
    fn key(&self, epoch: u32) -> Option<LessSafeKey> {
        let prk = Salt::new(HKDF_SHA256, b"corral session tickets").extract(&self.secret);
        let epoch = epoch.to_be_bytes();
        let info = [&epoch[..]];
        let okm = prk.expand(&info, &AES_256_GCM).ok()?;
        Some(LessSafeKey::new(UnboundKey::from(okm)))
    }
}

fn epoch_now() -> u32 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    (secs / ROTATE_EVERY) as u32
}

/// A sealed ticket: epoch (4 bytes), nonce, ciphertext and tag.
const HEADER: usize = 4 + NONCE_LEN;

impl ProducesTickets for Tickets {
    fn enabled(&self) -> bool {
        true
    }

    fn lifetime(&self) -> u32 {
        ROTATE_EVERY as u32
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        let epoch = epoch_now();
        let key = self.key(epoch)?;
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).ok()?;
        let mut out = Vec::with_capacity(HEADER + plain.len() + AES_256_GCM.tag_len());
        out.extend_from_slice(&epoch.to_be_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plain);
        let mut body = out.split_off(HEADER);
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&epoch.to_be_bytes()),
            &mut body,
        )
        .ok()?;
        out.extend_from_slice(&body);
        Some(out)
    }

    fn decrypt(&self, sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < HEADER + AES_256_GCM.tag_len() {
            return None;
        }
        let epoch = u32::from_be_bytes(sealed[..4].try_into().ok()?);
        let now = epoch_now();
        if epoch != now && epoch.checked_add(1) != Some(now) {
            return None; // older than one rotation, or from the future
        }
        let key = self.key(epoch)?;
        let nonce = Nonce::try_assume_unique_for_key(&sealed[4..HEADER]).ok()?;
        let mut body = sealed[HEADER..].to_vec();
        let plain = key
            .open_in_place(nonce, Aad::from(&epoch.to_be_bytes()), &mut body)
            .ok()?;
        let n = plain.len();
        body.truncate(n);
        Some(body)
    }
}

/// One frontend's sessions, and their keys oldest first (for eviction).
type Sessions = (HashMap<Vec<u8>, Vec<u8>>, VecDeque<Vec<u8>>);

/// A worker's stored sessions, one map per frontend.
#[derive(Default)]
struct Stored {
    maps: HashMap<usize, Sessions>,
}

/// A change to the session cache that every other worker applies to its
/// own copy: a session stored (`value`), or taken (`None`: a TLS 1.3
/// session resumes once).
#[derive(Debug, Clone)]
pub(crate) struct SharedSession {
    pub frontend: u32,
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
}

thread_local! {
    static STORED: RefCell<Stored> = RefCell::new(Stored::default());
    /// Changes made during handshakes, not yet sent to the other workers
    /// (rustls stores sessions from inside a synchronous call; the
    /// connection's task sends them once the handshake has run).
    static OUTBOX: RefCell<Vec<SharedSession>> = const { RefCell::new(Vec::new()) };
}

/// Stores a session in this worker's copy, evicting the oldest beyond
/// `size`.
fn insert(frontend: usize, size: usize, key: Vec<u8>, value: Vec<u8>) {
    STORED.with(|s| {
        let mut s = s.borrow_mut();
        let (map, order) = s.maps.entry(frontend).or_default();
        if map.insert(key.clone(), value).is_none() {
            order.push_back(key);
        }
        while map.len() > size {
            let Some(old) = order.pop_front() else { break };
            map.remove(&old);
        }
    });
}

fn remove(frontend: usize, key: &[u8]) -> Option<Vec<u8>> {
    // The key stays in the eviction order until its turn; harmless.
    STORED.with(|s| s.borrow_mut().maps.get_mut(&frontend)?.0.remove(key))
}

/// The changes to send to the other workers (empty, without allocating,
/// when no handshake stored anything).
pub(crate) fn take_outbox() -> Vec<SharedSession> {
    OUTBOX.with(|o| std::mem::take(&mut *o.borrow_mut()))
}

/// Applies another worker's change to this worker's copy.
pub(crate) fn apply_shared(size: usize, change: SharedSession) {
    if size == 0 {
        return;
    }
    let fe = change.frontend as usize;
    match change.value {
        Some(v) => insert(fe, size, change.key, v),
        None => {
            remove(fe, &change.key);
        }
    }
}

/// The session cache of frontend `frontend`, holding at most `size`
/// sessions (the oldest goes first). Every worker keeps a copy of the
/// whole cache: a session one worker stores or takes is sent to every
/// other worker over the cross-core channels (`shared`, with more than
/// one worker), so a client resumes by session id (TLS 1.2) or stateful
/// ticket (TLS 1.3 with tickets off) on whichever worker the kernel hands
/// its next connection, and a handshake only ever reads its own worker's
/// copy: no lock, no wait.
#[derive(Debug)]
pub(crate) struct SessionCache {
    pub frontend: usize,
    pub size: usize,
    pub shared: bool,
}

impl StoresServerSessions for SessionCache {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        if self.size == 0 {
            return false;
        }
        if self.shared {
            let change = SharedSession {
                frontend: self.frontend as u32,
                key: key.clone(),
                value: Some(value.clone()),
            };
            OUTBOX.with(|o| o.borrow_mut().push(change));
        }
        insert(self.frontend, self.size, key, value);
        true
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        STORED.with(|s| {
            let s = s.borrow();
            s.maps.get(&self.frontend)?.0.get(key).cloned()
        })
    }

    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        let taken = remove(self.frontend, key)?;
        if self.shared {
            let change = SharedSession {
                frontend: self.frontend as u32,
                key: key.to_vec(),
                value: None,
            };
            OUTBOX.with(|o| o.borrow_mut().push(change));
        }
        Some(taken)
    }

    fn can_cache(&self) -> bool {
        self.size > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_opens_with_the_same_secret_only() {
        let t = Tickets::new().unwrap();
        let sealed = t.encrypt(b"session state").unwrap();
        assert_eq!(t.decrypt(&sealed).unwrap(), b"session state");
        // Another process (another secret) cannot open it.
        assert!(Tickets::new().unwrap().decrypt(&sealed).is_none());
        // Tampering is detected.
        let mut bad = sealed.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(t.decrypt(&bad).is_none());
        assert!(t.decrypt(&sealed[..10]).is_none());
    }

    #[test]
    fn tickets_expire_after_one_rotation() {
        let t = Tickets::new().unwrap();
        let mut sealed = t.encrypt(b"x").unwrap();
        // Re-seal under an epoch two periods back: refused.
        let old = epoch_now() - 2;
        let key = t.key(old).unwrap();
        let nonce = [7u8; NONCE_LEN];
        let mut body = b"x".to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&old.to_be_bytes()),
            &mut body,
        )
        .unwrap();
        sealed.clear();
        sealed.extend_from_slice(&old.to_be_bytes());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&body);
        assert!(t.decrypt(&sealed).is_none());
    }

    #[test]
    fn the_session_cache_evicts_the_oldest_and_keeps_frontends_apart() {
        let a = SessionCache {
            frontend: 1,
            size: 2,
            shared: false,
        };
        let b = SessionCache {
            frontend: 2,
            size: 2,
            shared: false,
        };
        assert!(a.put(b"k1".to_vec(), b"v1".to_vec()));
        assert!(a.put(b"k2".to_vec(), b"v2".to_vec()));
        assert!(a.put(b"k3".to_vec(), b"v3".to_vec()));
        assert_eq!(a.get(b"k1"), None);
        assert_eq!(a.get(b"k2").as_deref(), Some(&b"v2"[..]));
        assert_eq!(b.get(b"k2"), None);
        assert_eq!(a.take(b"k3").as_deref(), Some(&b"v3"[..]));
        assert_eq!(a.get(b"k3"), None);
        assert!(take_outbox().is_empty(), "an unshared cache sends nothing");
    }

    #[test]
    fn a_shared_cache_sends_its_changes_and_applies_others() {
        let a = SessionCache {
            frontend: 7,
            size: 4,
            shared: true,
        };
        assert!(a.put(b"id".to_vec(), b"state".to_vec()));
        assert_eq!(a.take(b"id").as_deref(), Some(&b"state"[..]));
        let out = take_outbox();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].value.as_deref(), Some(&b"state"[..]));
        assert!(out[1].value.is_none());
        // Another worker's store, then its take, applied here.
        apply_shared(4, out[0].clone());
        assert_eq!(a.get(b"id").as_deref(), Some(&b"state"[..]));
        apply_shared(4, out[1].clone());
        assert_eq!(a.get(b"id"), None);
        assert!(
            take_outbox().is_empty(),
            "applied changes are not sent again"
        );
    }
}

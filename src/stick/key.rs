//! Stick-table keys: `type: ip | ipv6 | integer | string` and the value a
//! fetch gives, converted the way HAProxy converts samples to keys.

use crate::acl::Sample;
use crate::model::table::KeyType;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A key. Addresses and integers are stored inline; only string keys
/// allocate.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    V4([u8; 4]),
    V6([u8; 16]),
    Int(u32),
    Str(Box<[u8]>),
}

impl Key {
    /// The key for `sample` in a table of type `kt`; `None` when the
    /// sample cannot be one (an IPv6 client in an `ip` table, text that is
    /// no number in an `integer` table).
    pub(crate) fn from_sample(kt: KeyType, sample: &Sample<'_>) -> Option<Key> {
        match (kt, sample) {
            (KeyType::Ip | KeyType::Ipv6, Sample::Ip(ip)) => Key::from_ip(kt, *ip),
            (KeyType::Ip | KeyType::Ipv6, Sample::Str(s)) => {
                let ip: IpAddr = std::str::from_utf8(s).ok()?.trim().parse().ok()?;
                Key::from_ip(kt, ip)
            }
            (KeyType::Integer, Sample::Int(i)) => u32::try_from(*i).ok().map(Key::Int),
            (KeyType::Integer, Sample::Str(s)) => std::str::from_utf8(s)
                .ok()?
                .trim()
                .parse()
                .ok()
                .map(Key::Int),
            (KeyType::Integer, Sample::Bool(b)) => Some(Key::Int(u32::from(*b))),
            (KeyType::String { len }, s) => {
                let mut out = Vec::new();
                s.write_to(&mut out);
                out.truncate(len);
                Some(Key::Str(out.into_boxed_slice()))
            }
            _ => None,
        }
    }

    /// The key of a client address in a table of type `kt`.
    pub(crate) fn from_ip(kt: KeyType, ip: IpAddr) -> Option<Key> {
        match (kt, ip) {
            (KeyType::Ip, IpAddr::V4(v4)) => Some(Key::V4(v4.octets())),
            (KeyType::Ip, IpAddr::V6(v6)) => v6.to_ipv4_mapped().map(|v4| Key::V4(v4.octets())),
            (KeyType::Ipv6, IpAddr::V4(v4)) => Some(Key::V6(v4.to_ipv6_mapped().octets())),
            (KeyType::Ipv6, IpAddr::V6(v6)) => Some(Key::V6(v6.octets())),
            _ => None,
        }
    }

    /// The worker that owns this key among `workers`: the same on every
    /// worker and every run. Address keys use the hash the `steer: source`
    /// BPF program computes, so a steered client's key is owned by the
    /// worker that accepted it.
    pub(crate) fn owner(&self, workers: usize) -> usize {
        if workers <= 1 {
            return 0;
        }
        match self {
            Key::V4(a) => crate::base::hash::owner(IpAddr::V4(Ipv4Addr::from(*a)), workers),
            Key::V6(a) => crate::base::hash::owner(IpAddr::V6(Ipv6Addr::from(*a)), workers),
            Key::Int(i) => {
                (crate::base::hash::hash_bytes(&i.to_be_bytes()) % workers as u64) as usize
            }
            Key::Str(s) => (crate::base::hash::hash_bytes(s) % workers as u64) as usize,
        }
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Key::V4(a) => write!(f, "{}", Ipv4Addr::from(*a)),
            Key::V6(a) => write!(f, "{}", Ipv6Addr::from(*a)),
            Key::Int(i) => write!(f, "{i}"),
            Key::Str(s) => write!(f, "{}", String::from_utf8_lossy(s)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    #[test]
    fn samples_become_keys_like_haproxy_casts_them() {
        let v4: IpAddr = "10.0.0.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(Key::from_ip(KeyType::Ip, v4), Some(Key::V4([10, 0, 0, 1])));
        assert_eq!(
            Key::from_ip(KeyType::Ip, mapped),
            Some(Key::V4([10, 0, 0, 1]))
        );
        assert_eq!(Key::from_ip(KeyType::Ip, v6), None);
        assert_eq!(
            Key::from_ip(KeyType::Ipv6, v4),
            Key::from_ip(KeyType::Ipv6, mapped)
        );
        let s = Sample::Str(Cow::Borrowed(b"alice-and-bob"));
        assert_eq!(
            Key::from_sample(KeyType::String { len: 5 }, &s),
            Some(Key::Str(b"alice".to_vec().into_boxed_slice()))
        );
        assert_eq!(Key::from_sample(KeyType::Integer, &s), None);
        assert_eq!(
            Key::from_sample(KeyType::Integer, &Sample::Str(Cow::Borrowed(b"42"))),
            Some(Key::Int(42))
        );
        assert_eq!(
            Key::from_sample(KeyType::Integer, &Sample::Int(-1)),
            None,
            "integer keys are unsigned 32-bit"
        );
    }

    #[test]
    fn owners_agree_and_spread() {
        let mut per = [0usize; 2];
        for i in 0..1000u32 {
            let k = Key::V4([127, 0, (i >> 8) as u8, i as u8]);
            assert_eq!(k.owner(2), k.clone().owner(2));
            per[k.owner(2)] += 1;
        }
        assert!(per[0] > 400 && per[1] > 400, "{per:?}");
        assert_eq!(Key::Int(7).owner(1), 0);
    }
}

//! Hashes that must agree across workers, processes and restarts (the
//! `source` balance, later stick-table sharding). Fixed functions, no
//! random seed: the same input gives the same value everywhere. [`owner`]
//! is the worker the kernel's steering program (`proxy::accept::steer`)
//! sends a client address to, and the worker that owns its stick-table keys.

use std::net::IpAddr;

/// FNV-1a over the bytes, finished with the murmur3 64-bit mixer so that
/// nearby inputs (127.0.1.1, 127.0.1.2) land far apart.
pub(crate) fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    fmix64(h)
}

/// The full client address, never a prefix. An IPv4-mapped IPv6 address
/// hashes as its IPv4 form, so dual-stack listeners agree.
pub(crate) fn hash_ip(ip: IpAddr) -> u64 {
    match ip {
        IpAddr::V4(v4) => hash_bytes(&v4.octets()),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => hash_bytes(&v4.octets()),
            None => hash_bytes(&v6.octets()),
        },
    }
}

/// Combines two hashes into one (order matters).
pub(crate) fn combine(a: u64, b: u64) -> u64 {
    fmix64(a ^ b.rotate_left(29).wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

/// Fibonacci hashing's multiplier, 2³²/φ rounded to odd.
pub(crate) const GOLDEN: u32 = 0x9E37_79B9;
/// Multiplier of the IPv6 word combination (odd, so each step is a
/// bijection of the running value).
pub(crate) const V6_MUL: u32 = 0x85EB_CA6B;
/// Largest worker count: `(owner_hash >> 16) * workers` must fit 32 bits.
pub(crate) const MAX_WORKERS: usize = u16::MAX as usize;

/// The 32-bit hash of a client address that the BPF program computes (defined in
/// `proxy::accept::steer`'s module documentation). An IPv4-mapped IPv6
/// address hashes as its IPv4 form. Its high bits are the mixed ones:
/// reduce it with [`owner`], not with `%`.
pub(crate) fn owner_hash(ip: IpAddr) -> u32 {
    let x = match ip {
        IpAddr::V4(v4) => u32::from(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => u32::from(v4),
            None => {
                let o = v6.octets();
                let w = |i: usize| u32::from_be_bytes([o[i], o[i + 1], o[i + 2], o[i + 3]]);
                let mut x = w(0);
                for i in [4, 8, 12] {
                    x = x.wrapping_mul(V6_MUL).wrapping_add(w(i));
                }
                x
            }
        },
    };
    x.wrapping_mul(GOLDEN)
}

/// The worker (index in its listening group) that the program
/// built by `steer::program(workers)` sends a connection from `ip` to:
/// `((owner_hash(ip) >> 16) * workers) >> 16`, in `0..workers`.
/// Panics if `workers` is 0 or above [`MAX_WORKERS`].
pub(crate) fn owner(ip: IpAddr, workers: usize) -> usize {
    assert!(
        (1..=MAX_WORKERS).contains(&workers),
        "hash::owner: workers must be in 1..={MAX_WORKERS}, not {workers}"
    );
    (((owner_hash(ip) >> 16) as usize) * workers) >> 16
}

#[cfg(test)]
mod tests {
    use super::*;

    const PINNED_10_0_0_1: u64 = 2_674_265_721_150_626_473;

    #[test]
    fn values_are_fixed_forever() {
        // These values are part of corral's behaviour: changing them moves
        // every `balance source` client after an upgrade.
        assert_eq!(hash_bytes(b""), fmix64(0xcbf2_9ce4_8422_2325));
        assert_eq!(
            hash_ip("10.0.0.1".parse().unwrap()),
            hash_bytes(&[10, 0, 0, 1])
        );
        assert_eq!(
            hash_ip("::ffff:10.0.0.1".parse().unwrap()),
            hash_ip("10.0.0.1".parse().unwrap())
        );
        assert_eq!(hash_ip("10.0.0.1".parse().unwrap()), PINNED_10_0_0_1);
    }

    #[test]
    fn whole_address_matters() {
        let a = hash_ip("192.168.1.10".parse().unwrap());
        let b = hash_ip("192.168.2.10".parse().unwrap());
        let c = hash_ip("192.168.1.11".parse().unwrap());
        assert_ne!(a, b);
        assert_ne!(a, c);
    }
}

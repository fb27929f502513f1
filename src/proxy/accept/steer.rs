//! `global.steer: source`: the kernel picks the worker that accepts a TCP
//! connection by hashing the client's source address, so every connection
//! from one client lands on the same worker, and corral can tell, for any
//! address, which worker that is ([`owner`]).
//!
//! The low-level part lives here:
//!
//! - `base::hash::{owner_hash, owner}`: the hash and the reduction, in Rust.
//! - [`program`]: the same computation as a classic-BPF program.
//! - [`attach`]: installs it on a `SO_REUSEPORT` group
//!   (`SO_ATTACH_REUSEPORT_CBPF`).
//! - `bind_group` (in tests): binds and listens the per-worker sockets in
//!   the order the program's return value refers to, as `process::groups`
//!   does for real.
//!
//! # The hash
//!
//! Everything is 32-bit wrapping arithmetic, which classic BPF computes
//! natively (`mul`, `add`, `rsh`).
//!
//! - IPv4 `a.b.c.d`: `x = u32::from_be_bytes([a, b, c, d])` (what
//!   `BPF_LD|BPF_W|BPF_ABS` loads), `owner_hash = x · G` with
//!   `G = 0x9E37_79B9` (2³²/φ, Fibonacci hashing).
//! - IPv4-mapped IPv6 `::ffff:a.b.c.d`: exactly as IPv4 `a.b.c.d`.
//! - Other IPv6: the 16 bytes as four big-endian words `w0..w3`,
//!   `x = ((w0·P + w1)·P + w2)·P + w3` with `P = 0x85EB_CA6B`,
//!   `owner_hash = x · G`. All 128 bits count, so clients that share a /64
//!   (one ISP, one office) still spread over the workers. (`::a.b.c.d`,
//!   the deprecated IPv4-compatible form, thereby hashes like `a.b.c.d`
//!   too; harmless.)
//!
//! The reduction takes the HIGH bits, where multiplication mixes:
//! `owner(ip, n) = ((owner_hash(ip) >> 16) · n) >> 16` (`n` ≤ 65535, so the
//! product fits 32 bits), and the BPF program returns exactly that value as
//! the index of the socket in the group. Do not reduce `owner_hash` with
//! `%`: its low k bits depend only on the address's low k bits.
//!
//! Why not a "random-looking" mixer (murmur3's fmix32) with `% n`: over
//! 1000 consecutive addresses that behaves like chance, and chance puts
//! some worker 15-20% off the mean for n = 2..8. A multiplicative hash read
//! from the top is a Weyl sequence for addresses that differ by a constant
//! step (consecutive addresses, one per /24, consecutive /64s ...), which
//! spreads them within 1-4% of the mean (see the tests); addresses that
//! look random spread like chance, as with any hash.
//!
//! The hash is fixed and public, not keyed: it balances ordinary clients,
//! it does not resist a client that picks its source addresses to load one
//! worker (a client with many addresses can do that with any per-address
//! scheme anyway). Being linear modulo 2³², IPv6 addresses that differ only
//! in the top bits of two words can collide; that costs balance, nothing
//! else.
//!
//! # What the kernel does (checked against net/core/sock_reuseport.c)
//!
//! - A TCP socket joins its `SO_REUSEPORT` group at `listen()`
//!   (`__inet_hash` → `inet_reuseport_add_sock`), not at `bind()`; the
//!   group's array `socks[]` is in the order of those `listen()` calls:
//!   `__reuseport_add_sock` appends at `socks[num_socks]`.
//! - Closing (or `shutdown`ting) a listener removes it with
//!   `socks[i] = socks[num_socks - 1]`: the LAST socket moves into the
//!   hole, so the indices of the survivors change.
//! - For each packet that reaches the listener lookup (a SYN; also the
//!   ACK of a SYN-cookie handshake, which has the same source)
//!   `reuseport_select_sock` runs the program through `run_bpf_filter`,
//!   which first `pskb_pull`s the packet past the TCP header: offsets ≥ 0
//!   address the payload, so the program reads the IP header through the
//!   `SKF_NET_OFF` (-0x100000) base: the version nibble at +0, the IPv4
//!   source at +12, the IPv6 source at +8..+24.
//! - The return value is the index into `socks[]`. An index ≥ the number
//!   of listening sockets (`index >= socks`) makes `run_bpf_filter` return
//!   NULL and the kernel falls back to its own hash of the 4-tuple
//!   (`reuseport_select_sock_by_hash`): the connection is accepted, just on
//!   an arbitrary worker. The program returns `0xFFFF_FFFF` for a packet
//!   that is neither IPv4 nor IPv6.
//! - A dual-stack IPv6 listener (`IPV6_V6ONLY` off) receiving an IPv4
//!   client gets an IPv4 packet: the network header is an IPv4 header, the
//!   program hashes the IPv4 source, and accept() reports the peer as
//!   `::ffff:a.b.c.d`, which `owner_hash` maps back to `a.b.c.d`: the two
//!   agree (tested: `dual_stack_v4_client_matches_mapped_owner`). A real
//!   IPv6 packet with a mapped source never becomes a TCP connection
//!   (`tcp_v6_conn_request` drops it); the program still hashes it like
//!   its IPv4 form, so program and `owner_hash` agree for every input.
//! - In classic BPF a load outside the packet ends the program with return
//!   value 0 (socket 0). The IP header of a packet that reached the TCP
//!   listener lookup is always there, so this does not happen in practice.
//! - `SO_ATTACH_REUSEPORT_CBPF` exists since Linux 4.5 and, by the kernel's
//!   history, applies to TCP listeners since 4.6 (only the current kernel
//!   was tested); the program uses only original classic-BPF instructions
//!   (`ld`, `ldx`, `st`, `and`, `add`, `mul`, `rsh`, `jeq`, `ja`, `ret`).

use std::io;
use std::os::fd::RawFd;
#[cfg(test)]
use {
    socket2::{Domain, Protocol, Socket, Type},
    std::net::SocketAddr,
    std::os::fd::AsRawFd,
};

/// `SO_ATTACH_REUSEPORT_CBPF` (the libc crate only has it for Android).
/// asm-generic and most architectures use 51; SPARC has its own numbering.
#[cfg(any(target_arch = "sparc", target_arch = "sparc64"))]
pub(crate) const SO_ATTACH_REUSEPORT_CBPF: libc::c_int = 0x35;
#[cfg(not(any(target_arch = "sparc", target_arch = "sparc64")))]
pub(crate) const SO_ATTACH_REUSEPORT_CBPF: libc::c_int = 51;
/// `SO_DETACH_REUSEPORT_BPF` (Linux 5.3).
#[cfg(any(target_arch = "sparc", target_arch = "sparc64"))]
pub(crate) const SO_DETACH_REUSEPORT_BPF: libc::c_int = 0x0047;
#[cfg(not(any(target_arch = "sparc", target_arch = "sparc64")))]
pub(crate) const SO_DETACH_REUSEPORT_BPF: libc::c_int = 68;

use crate::base::hash::{GOLDEN, MAX_WORKERS, V6_MUL};

/// What the program returns for a packet it cannot hash: ≥ any group size,
/// so the kernel falls back to its own hash.
const NO_OPINION: u32 = u32::MAX;

// --- the classic-BPF program -------------------------------------------

/// Offsets of the fields the program reads, relative to `SKF_NET_OFF`.
const NET_OFF: i32 = libc::SKF_NET_OFF;
const OFF_VERSION: i32 = 0;
const OFF_V4_SRC: i32 = 12;
const OFF_V6_SRC: i32 = 8;

/// A tiny assembler: statements, forward jumps to labels, label marks.
enum Item {
    Stmt(u16, u32),
    /// `jeq #k, then, else`.
    Jeq(u32, Label, Label),
    Ja(Label),
    Mark(Label),
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Label {
    Next,
    V4,
    V6Full,
    Mix,
    NoOpinion,
}

fn stmt(code: u32, k: u32) -> Item {
    Item::Stmt(code as u16, k)
}

fn ld_net(size: u32, off: i32) -> Item {
    stmt(libc::BPF_LD | size | libc::BPF_ABS, (NET_OFF + off) as u32)
}

fn assemble(items: &[Item]) -> Vec<libc::sock_filter> {
    // Pass 1: the instruction index of each label.
    let mut at = Vec::new();
    let mut pc = 0usize;
    for item in items {
        match item {
            Item::Mark(l) => at.push((*l, pc)),
            _ => pc += 1,
        }
    }
    let target = |l: Label, pc: usize| -> usize {
        let t = at
            .iter()
            .find(|(m, _)| *m == l)
            .map(|&(_, t)| t)
            .unwrap_or_else(|| panic!("steer: label {l:?} not placed"));
        assert!(t > pc, "steer: backward jump to {l:?}");
        t - pc - 1
    };
    let small = |l: Label, pc: usize| -> u8 {
        if l == Label::Next {
            return 0;
        }
        u8::try_from(target(l, pc)).expect("steer: conditional jump too long")
    };
    // Pass 2: emit.
    let mut out = Vec::with_capacity(pc);
    for item in items {
        let pc = out.len();
        let insn = match *item {
            Item::Mark(_) => continue,
            Item::Stmt(code, k) => libc::sock_filter {
                code,
                jt: 0,
                jf: 0,
                k,
            },
            Item::Jeq(k, t, f) => libc::sock_filter {
                code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
                jt: small(t, pc),
                jf: small(f, pc),
                k,
            },
            Item::Ja(l) => libc::sock_filter {
                code: (libc::BPF_JMP | libc::BPF_JA) as u16,
                jt: 0,
                jf: 0,
                k: target(l, pc) as u32,
            },
        };
        out.push(insn);
    }
    out
}

/// The classic-BPF program that returns `owner(source address, workers)`
/// for each incoming connection, to attach to a `SO_REUSEPORT` group with
/// [`attach`]. The value is the index of the socket in the group; an index
/// ≥ the group's number of listening sockets (a worker missing, or a
/// packet that is neither IPv4 nor IPv6, for which the program returns
/// `0xFFFF_FFFF`) makes the kernel fall back to its own 4-tuple hash.
/// Panics if `workers` is 0 or above [`MAX_WORKERS`].
pub(crate) fn program(workers: u32) -> Vec<libc::sock_filter> {
    use Item::*;
    use Label::*;
    assert!(
        (1..=MAX_WORKERS as u32).contains(&workers),
        "steer::program: workers must be in 1..={MAX_WORKERS}, not {workers}"
    );
    let alu = |op: u32, k: u32| stmt(libc::BPF_ALU | op | libc::BPF_K, k);
    let alu_x = |op: u32| stmt(libc::BPF_ALU | op | libc::BPF_X, 0);
    let st0 = || stmt(libc::BPF_ST, 0);
    let ldx0 = || stmt(libc::BPF_LDX | libc::BPF_MEM, 0);
    let w = libc::BPF_W;
    let v6 = |i: i32| ld_net(w, OFF_V6_SRC + 4 * i);

    let mut p = vec![
        // A = version nibble (high 4 bits of the first header byte).
        ld_net(libc::BPF_B, OFF_VERSION),
        alu(libc::BPF_AND, 0xF0),
        Jeq(0x40, V4, Next),
        Jeq(0x60, Next, NoOpinion),
        // IPv6: ::ffff:a.b.c.d hashes as a.b.c.d.
        v6(0),
        Jeq(0, Next, V6Full),
        v6(1),
        Jeq(0, Next, V6Full),
        v6(2),
        Jeq(0xFFFF, Next, V6Full),
        v6(3),
        Ja(Mix),
        // IPv6: h = ((w0*P + w1)*P + w2)*P + w3, M[0] holds the running h.
        Mark(V6Full),
        v6(0),
    ];
    for i in 1..4 {
        p.extend([
            alu(libc::BPF_MUL, V6_MUL),
            st0(),
            v6(i),
            ldx0(),
            alu_x(libc::BPF_ADD),
        ]);
    }
    p.extend([
        Ja(Mix),
        Mark(V4),
        ld_net(w, OFF_V4_SRC),
        // ((A * G) >> 16) * workers >> 16.
        Mark(Mix),
        alu(libc::BPF_MUL, GOLDEN),
        alu(libc::BPF_RSH, 16),
        alu(libc::BPF_MUL, workers),
        alu(libc::BPF_RSH, 16),
        stmt(libc::BPF_RET | libc::BPF_A, 0),
        Mark(NoOpinion),
        stmt(libc::BPF_RET | libc::BPF_K, NO_OPINION),
    ]);
    assemble(&p)
}

/// Attaches `program(workers)` to the `SO_REUSEPORT` group of `fd`
/// (`setsockopt(SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF)`). `fd` must have
/// `SO_REUSEPORT` set; attach after it listens (it is then in its group;
/// the program is the group's, whichever member it is attached through).
/// Errors name the option and say what to change.
pub(crate) fn attach(fd: RawFd, workers: u32) -> io::Result<()> {
    if !(1..=MAX_WORKERS as u32).contains(&workers) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "steer: SO_ATTACH_REUSEPORT_CBPF needs 1..={MAX_WORKERS} workers, not {workers}"
            ),
        ));
    }
    let mut filter = program(workers);
    let prog = libc::sock_fprog {
        len: filter.len() as libc::c_ushort,
        filter: filter.as_mut_ptr(),
    };
    // SAFETY: `prog` points at `filter`, both live across the call; the
    // kernel copies the program.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            SO_ATTACH_REUSEPORT_CBPF,
            (&prog as *const libc::sock_fprog).cast(),
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    let why = match e.raw_os_error() {
        Some(libc::ENOPROTOOPT) => {
            "the kernel does not know this option (it needs Linux 4.5, and 4.6 for TCP); \
             upgrade the kernel or remove `global.steer: source`"
        }
        Some(libc::EINVAL) => {
            "the kernel rejected the socket or the program: the socket must have SO_REUSEPORT \
             set before bind() and listen() (a socket without it has no group to steer); \
             if it has, the kernel refused the classic-BPF program: remove `global.steer: source`"
        }
        Some(libc::EPERM) | Some(libc::EACCES) => {
            "not permitted: a seccomp filter, LSM (SELinux/AppArmor) or container policy \
             blocks setsockopt SO_ATTACH_REUSEPORT_CBPF; allow it or remove `global.steer: source`"
        }
        Some(libc::ENOMEM) => {
            "the kernel could not allocate the program (its size counts against \
             net.core.optmem_max); raise that sysctl or remove `global.steer: source`"
        }
        _ => "remove `global.steer: source` to run without steering",
    };
    Err(io::Error::new(
        e.kind(),
        format!(
            "steer: setsockopt(SO_ATTACH_REUSEPORT_CBPF) on fd {fd} for {workers} workers failed: {e}; {why}"
        ),
    ))
}

/// Removes the program from the `SO_REUSEPORT` group of `fd`, if it has
/// one (a reload to a configuration without `steer: source`, or with one
/// worker): the kernel's own hash spreads connections again.
pub(crate) fn detach(fd: RawFd) {
    let zero: libc::c_int = 0;
    // SAFETY: setsockopt with a valid int; failure (no program, an old
    // kernel) leaves things as they are.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            SO_DETACH_REUSEPORT_BPF,
            (&zero as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// Creates the `workers` listening sockets of one `SO_REUSEPORT` group on
/// `addr`, in worker order, and attaches the steering program: returned
/// socket `k` is worker `k`'s listener, the one [`owner`] names.
///
/// Each socket: `SO_REUSEADDR`, `SO_REUSEPORT`, `IPV6_V6ONLY` for an IPv6
/// address, non-blocking, close-on-exec; bound and listening with
/// `backlog`. If `addr`'s port is 0, the first socket's port is used for
/// the others. The program is attached to the first socket right after it
/// listens, before the others join.
///
/// What the caller must guarantee for [`owner`] to stay true:
/// - socket `k` of the group is worker `k`'s listener: the group's order is
///   the order of `listen()` calls, which this function fixes; do not
///   reorder the returned vector;
/// - no other socket joins the group: no extra "reservation" or probe
///   socket on the same address and port (closing any member moves the
///   LAST socket into its slot), and no second process listening on the
///   same address and port with the same user. (corral's reloads keep the
///   group: the master hands the same sockets to each generation, and a
///   generation with more workers only appends sockets at the end; see
///   `master/groups.rs`.)
/// - all sockets stay open as long as steering is expected: closing one
///   reorders the rest (the kernel keeps the program, the mapping breaks).
///
/// While this function runs, a connection whose owner has no socket yet
/// (index ≥ sockets listening so far) is placed by the kernel's own hash,
/// so one that arrives before it returns may sit in another worker's
/// accept queue; from its return on, every connection lands on its owner.
///
/// On error the sockets created so far are closed.
#[cfg(test)]
pub(crate) fn bind_group(
    addr: SocketAddr,
    workers: usize,
    backlog: i32,
) -> io::Result<Vec<Socket>> {
    bind_group_with(addr, workers, backlog, true, true)
}

#[cfg(test)]
fn bind_group_with(
    addr: SocketAddr,
    workers: usize,
    backlog: i32,
    v6only: bool,
    steer: bool,
) -> io::Result<Vec<Socket>> {
    let n = u32::try_from(workers)
        .ok()
        .filter(|&n| (1..=MAX_WORKERS as u32).contains(&n))
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("steer: a steered group needs 1..={MAX_WORKERS} workers, not {workers}"),
            )
        })?;
    let mut addr = addr;
    let mut socks = Vec::with_capacity(workers);
    for k in 0..workers {
        let ctx = |what: &str, e: io::Error| {
            io::Error::new(
                e.kind(),
                format!("steer: listener {k} of {workers} on {addr}: {what}: {e}"),
            )
        };
        let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
            .map_err(|e| ctx("socket", e))?;
        s.set_reuse_address(true)
            .map_err(|e| ctx("SO_REUSEADDR", e))?;
        s.set_reuse_port(true).map_err(|e| ctx("SO_REUSEPORT", e))?;
        if addr.is_ipv6() {
            s.set_only_v6(v6only).map_err(|e| ctx("IPV6_V6ONLY", e))?;
        }
        s.set_nonblocking(true).map_err(|e| ctx("O_NONBLOCK", e))?;
        s.bind(&addr.into()).map_err(|e| ctx("bind", e))?;
        s.listen(backlog).map_err(|e| ctx("listen", e))?;
        if k == 0 {
            if addr.port() == 0 {
                let local = s
                    .local_addr()
                    .map_err(|e| ctx("getsockname", e))?
                    .as_socket()
                    .ok_or_else(|| ctx("getsockname", io::Error::other("not an inet address")))?;
                addr.set_port(local.port());
            }
            if steer {
                attach(s.as_raw_fd(), n)?;
            }
        }
        socks.push(s);
    }
    Ok(socks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::hash::{owner, owner_hash};
    use std::net::IpAddr;
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4};
    use std::time::{Duration, Instant};

    // --- the hash ---------------------------------------------------------

    fn assert_even(name: &str, ips: &[IpAddr]) {
        for n in 2..=8usize {
            let mut count = vec![0usize; n];
            for &ip in ips {
                count[owner(ip, n)] += 1;
            }
            let mean = ips.len() as f64 / n as f64;
            for (w, &c) in count.iter().enumerate() {
                let dev = (c as f64 - mean).abs() / mean;
                assert!(
                    dev <= 0.15,
                    "{name}: n={n} worker {w} got {c}, mean {mean:.1} ({:.0}% off): {count:?}",
                    dev * 100.0
                );
            }
        }
    }

    #[test]
    fn owner_hash_spreads_consecutive_v4() {
        let base = u32::from(Ipv4Addr::new(127, 0, 1, 1));
        let ips: Vec<IpAddr> = (0..1000)
            .map(|i| IpAddr::V4(Ipv4Addr::from(base + i)))
            .collect();
        assert_even("127.0.1.1+i", &ips);
        let base = u32::from(Ipv4Addr::new(10, 0, 0, 0));
        let ips: Vec<IpAddr> = (0..1000)
            .map(|i| IpAddr::V4(Ipv4Addr::from(base + (i << 8))))
            .collect();
        assert_even("10.0.i.0", &ips);
    }

    #[test]
    fn owner_hash_spreads_consecutive_v6() {
        let base = u128::from("2001:db8::1".parse::<Ipv6Addr>().unwrap());
        let ips: Vec<IpAddr> = (0..1000u128)
            .map(|i| IpAddr::V6(Ipv6Addr::from(base + i)))
            .collect();
        assert_even("2001:db8::1+i", &ips);
        // Consecutive /64 prefixes with the same interface identifier.
        let ips: Vec<IpAddr> = (0..1000u128)
            .map(|i| IpAddr::V6(Ipv6Addr::from(base + (i << 64))))
            .collect();
        assert_even("2001:db8:0:i::1", &ips);
    }

    #[test]
    fn mapped_v6_hashes_as_v4() {
        for i in 0..1000u32 {
            let v4 = Ipv4Addr::from(0x7F00_0101u32.wrapping_add(i.wrapping_mul(7919)));
            assert_eq!(
                owner_hash(IpAddr::V4(v4)),
                owner_hash(IpAddr::V6(v4.to_ipv6_mapped())),
                "{v4}"
            );
        }
    }

    #[test]
    fn owner_hash_known_values() {
        // Pinned: other parts of corral (and other processes) rely on the
        // exact function; a change here must be deliberate.
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            owner_hash(ip("127.0.0.1")),
            0x7F00_0001u32.wrapping_mul(0x9E37_79B9)
        );
        assert_eq!(owner_hash(ip("127.0.0.1")), 0x6537_79B9);
        assert_eq!(owner_hash(ip("::ffff:127.0.0.1")), 0x6537_79B9);
        assert_eq!(owner_hash(ip("::1")), 0x9E37_79B9);
        assert_eq!(owner_hash(ip("0.0.0.1")), 0x9E37_79B9);
        assert_eq!(owner(ip("127.0.0.1"), 4), 1); // 0x6537 * 4 >> 16
        assert_eq!(owner(ip("::1"), 4), 2); // 0x9E37 * 4 >> 16
        assert_eq!(owner(ip("255.255.255.255"), MAX_WORKERS), {
            let h = 0xFFFF_FFFFu32.wrapping_mul(0x9E37_79B9) >> 16;
            ((h as usize) * MAX_WORKERS) >> 16
        });
    }

    // --- the program, run by a classic-BPF interpreter --------------------

    /// Runs a classic-BPF program over `net`, the bytes from the network
    /// header on (the payload, offsets ≥ 0, is empty, as for a SYN).
    /// Implements what the kernel does for the instructions it supports;
    /// any other instruction fails the test.
    fn run_cbpf(prog: &[libc::sock_filter], net: &[u8]) -> u32 {
        use libc::*;
        assert!(!prog.is_empty() && prog.len() <= BPF_MAXINSNS as usize);
        let (mut a, mut x, mut mem) = (0u32, 0u32, [0u32; BPF_MEMWORDS as usize]);
        let mut pc = 0usize;
        for _ in 0..=prog.len() {
            let ins = prog.get(pc).expect("program runs off its end");
            let code = u32::from(ins.code);
            let k = ins.k;
            pc += 1;
            let class = code & 0x07;
            match class {
                BPF_LD if code & 0xe0 == BPF_ABS => {
                    let size = match code & 0x18 {
                        BPF_W => 4,
                        BPF_H => 2,
                        BPF_B => 1,
                        _ => panic!("bad load size {code:#x}"),
                    };
                    let off = k as i32;
                    assert!((SKF_NET_OFF..SKF_AD_OFF).contains(&off), "load at {off:#x}");
                    let o = (off - SKF_NET_OFF) as usize;
                    let Some(b) = net.get(o..o + size) else {
                        return 0; // A failed load ends a classic program with 0.
                    };
                    a = b.iter().fold(0u32, |v, &b| (v << 8) | u32::from(b));
                }
                BPF_LD if code & 0xe0 == BPF_MEM => a = mem[k as usize],
                BPF_LD if code & 0xe0 == BPF_IMM => a = k,
                BPF_LDX if code & 0xe0 == BPF_MEM => x = mem[k as usize],
                BPF_LDX if code & 0xe0 == BPF_IMM => x = k,
                BPF_ST => mem[k as usize] = a,
                BPF_STX => mem[k as usize] = x,
                BPF_ALU => {
                    let src = if code & BPF_X != 0 { x } else { k };
                    a = match code & 0xf0 {
                        BPF_ADD => a.wrapping_add(src),
                        BPF_SUB => a.wrapping_sub(src),
                        BPF_MUL => a.wrapping_mul(src),
                        BPF_DIV if src == 0 => return 0,
                        BPF_DIV => a / src,
                        BPF_MOD if src == 0 => return 0,
                        BPF_MOD => a % src,
                        BPF_OR => a | src,
                        BPF_AND => a & src,
                        BPF_XOR => a ^ src,
                        BPF_LSH => a.wrapping_shl(src),
                        BPF_RSH => a.wrapping_shr(src),
                        BPF_NEG => a.wrapping_neg(),
                        op => panic!("unknown ALU op {op:#x}"),
                    };
                }
                BPF_JMP => {
                    let src = if code & BPF_X != 0 { x } else { k };
                    let taken = match code & 0xf0 {
                        BPF_JA => {
                            pc += k as usize;
                            continue;
                        }
                        BPF_JEQ => a == src,
                        BPF_JGT => a > src,
                        BPF_JGE => a >= src,
                        BPF_JSET => a & src != 0,
                        op => panic!("unknown JMP op {op:#x}"),
                    };
                    pc += usize::from(if taken { ins.jt } else { ins.jf });
                }
                BPF_RET if code & 0x18 == BPF_A => return a,
                BPF_RET => return k,
                BPF_MISC if code & 0xf8 == BPF_TAX => x = a,
                BPF_MISC if code & 0xf8 == BPF_TXA => a = x,
                _ => panic!("unknown instruction {code:#x}"),
            }
        }
        panic!("program did not return (a backward jump?)");
    }

    /// A 20-byte IPv4 header (no options needed: the source is at 12).
    fn v4_header(src: Ipv4Addr) -> Vec<u8> {
        let mut h = vec![0u8; 20];
        h[0] = 0x45;
        h[9] = 6; // TCP
        h[12..16].copy_from_slice(&src.octets());
        h[16..20].copy_from_slice(&[127, 0, 0, 1]);
        h
    }

    fn v6_header(src: Ipv6Addr) -> Vec<u8> {
        let mut h = vec![0u8; 40];
        h[0] = 0x60;
        h[6] = 6; // next header: TCP
        h[7] = 64;
        h[8..24].copy_from_slice(&src.octets());
        h[24..40].copy_from_slice(&Ipv6Addr::LOCALHOST.octets());
        h
    }

    fn header_for(ip: IpAddr) -> Vec<u8> {
        match ip {
            IpAddr::V4(v4) => v4_header(v4),
            IpAddr::V6(v6) => v6_header(v6),
        }
    }

    /// Deterministic pseudo-random addresses (xorshift), plus edge values.
    fn sample_ips() -> Vec<IpAddr> {
        let mut s = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let mut ips: Vec<IpAddr> = Vec::new();
        for i in 0..300u32 {
            ips.push(IpAddr::V4(Ipv4Addr::from(0x7F00_0101 + i)));
            ips.push(IpAddr::V4(Ipv4Addr::from(next() as u32)));
            let r = (u128::from(next()) << 64) | u128::from(next());
            ips.push(IpAddr::V6(Ipv6Addr::from(r)));
            ips.push(IpAddr::V6(Ipv6Addr::from(
                0x2001_0db8u128 << 96 | u128::from(i),
            )));
            let m = Ipv4Addr::from(next() as u32).to_ipv6_mapped();
            ips.push(IpAddr::V6(m));
        }
        for s in [
            "0.0.0.0",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:0.0.0.0",
            "::ffff:255.255.255.255",
            "::fffe:1.2.3.4",
            "0:0:1::ffff:1.2.3.4",
            "::1.2.3.4",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ] {
            ips.push(s.parse().unwrap());
        }
        ips
    }

    #[test]
    fn program_matches_owner_in_interpreter() {
        let ips = sample_ips();
        for n in [1u32, 2, 3, 4, 5, 7, 8, 64, 1000] {
            let prog = program(n);
            for &ip in &ips {
                let got = run_cbpf(&prog, &header_for(ip));
                assert_eq!(got as usize, owner(ip, n as usize), "{ip} n={n}");
            }
        }
    }

    #[test]
    fn program_falls_back_for_other_versions() {
        let prog = program(4);
        let mut h = v4_header(Ipv4Addr::new(1, 2, 3, 4));
        for version in [0u8, 5, 7, 0xF] {
            h[0] = version << 4 | 5;
            assert_eq!(run_cbpf(&prog, &h), NO_OPINION, "version {version}");
        }
        assert!(prog.len() <= 64, "program has {} instructions", prog.len());
    }

    // --- real sockets -----------------------------------------------------

    /// Accepts until `expected` connections arrived (or a 5 s deadline),
    /// returning (listener index, peer address) per connection.
    fn accept_all(socks: &[Socket], expected: usize) -> Vec<(usize, IpAddr)> {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut got = Vec::new();
        while got.len() < expected && Instant::now() < deadline {
            let mut idle = true;
            for (k, s) in socks.iter().enumerate() {
                loop {
                    match s.accept() {
                        Ok((_conn, peer)) => {
                            idle = false;
                            got.push((k, peer.as_socket().unwrap().ip()));
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => panic!("accept on listener {k}: {e}"),
                    }
                }
            }
            if idle {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        assert_eq!(
            got.len(),
            expected,
            "connections accepted before the deadline"
        );
        got
    }

    /// Connects from each source address to `dst` (blocking, 2 s timeout),
    /// keeps the client sockets open until the caller drops them.
    fn connect_from(srcs: &[IpAddr], dst: SocketAddr) -> Vec<Socket> {
        srcs.iter()
            .map(|&src| {
                let c = Socket::new(Domain::for_address(dst), Type::STREAM, None).unwrap();
                c.bind(&SocketAddr::new(src, 0).into())
                    .unwrap_or_else(|e| panic!("bind client to {src}: {e}"));
                c.connect_timeout(&dst.into(), Duration::from_secs(2))
                    .unwrap_or_else(|e| panic!("connect {src} -> {dst}: {e}"));
                c
            })
            .collect()
    }

    fn loopback_sources() -> Vec<IpAddr> {
        (0..200u8)
            .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 1 + i / 100, 1 + i % 100)))
            .collect()
    }

    fn port_of(s: &Socket) -> SocketAddr {
        s.local_addr().unwrap().as_socket().unwrap()
    }

    /// Returns how many of the connections from `srcs` arrived on socket
    /// `owner(peer, n)`, checking that the peer is one of `srcs`.
    fn run_group(socks: &[Socket], srcs: &[IpAddr], dst: SocketAddr) -> usize {
        let n = socks.len();
        let clients = connect_from(srcs, dst);
        let got = accept_all(socks, srcs.len());
        drop(clients);
        got.iter()
            .filter(|&&(k, peer)| {
                let src = match peer {
                    IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(peer, IpAddr::V4),
                    v4 => v4,
                };
                assert!(srcs.contains(&src), "unexpected peer {peer}");
                k == owner(peer, n)
            })
            .count()
    }

    #[test]
    fn group_v4_steers_by_source() {
        let srcs = loopback_sources();
        for n in [2usize, 3, 4] {
            let addr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0));
            let socks = bind_group(addr, n, 1024).expect("bind_group");
            let ports: Vec<u16> = socks.iter().map(|s| port_of(s).port()).collect();
            assert!(ports.iter().all(|&p| p == ports[0] && p != 0), "{ports:?}");
            let dst = port_of(&socks[0]);
            let ok = run_group(&socks, &srcs, dst);
            assert_eq!(ok, srcs.len(), "n={n}: connections on owner()'s socket");
        }
    }

    #[test]
    fn group_v4_without_program_does_not_match() {
        // The check above can fail: the kernel's own hash agrees with
        // owner() only by chance (about 1/n of the connections).
        let srcs = loopback_sources();
        for n in [2usize, 4] {
            let addr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0));
            let socks = bind_group_with(addr, n, 1024, true, false).expect("bind group");
            let dst = port_of(&socks[0]);
            let ok = run_group(&socks, &srcs, dst);
            let mismatched = srcs.len() - ok;
            println!(
                "n={n}: {mismatched} of {} off owner() without the program",
                srcs.len()
            );
            assert!(
                mismatched >= srcs.len() / 5,
                "n={n}: only {mismatched} of {} connections off owner() without the program",
                srcs.len()
            );
        }
    }

    fn have_v6_loopback() -> bool {
        match std::net::TcpListener::bind("[::1]:0") {
            Ok(_) => true,
            Err(e) => {
                println!("skipping: cannot bind [::1]: {e}");
                false
            }
        }
    }

    #[test]
    fn group_v6_steers_by_source() {
        if !have_v6_loopback() {
            return;
        }
        // ::1 is the only IPv6 loopback source: all connections must land
        // on owner(::1, n).
        let srcs = vec![IpAddr::V6(Ipv6Addr::LOCALHOST); 20];
        for n in [2usize, 3, 4] {
            let addr: SocketAddr = "[::1]:0".parse().unwrap();
            let socks = bind_group(addr, n, 1024).expect("bind_group v6");
            let dst = port_of(&socks[0]);
            let ok = run_group(&socks, &srcs, dst);
            assert_eq!(
                ok,
                srcs.len(),
                "n={n}: [::1] connections on owner()'s socket"
            );
        }
    }

    #[test]
    fn dual_stack_v4_client_matches_mapped_owner() {
        if !have_v6_loopback() {
            return;
        }
        // A dual-stack [::] group: IPv4 clients arrive as IPv4 packets (the
        // program hashes the IPv4 source) and accept() reports
        // ::ffff:a.b.c.d; owner() of that must be the accepting socket.
        let srcs: Vec<IpAddr> = loopback_sources().into_iter().take(100).collect();
        let n = 3;
        let addr: SocketAddr = "[::]:0".parse().unwrap();
        let socks = match bind_group_with(addr, n, 1024, false, true) {
            Ok(s) => s,
            Err(e) => {
                println!("skipping: cannot bind a dual-stack [::] group: {e}");
                return;
            }
        };
        let port = port_of(&socks[0]).port();
        let dst = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
        let clients = connect_from(&srcs, dst);
        let got = accept_all(&socks, srcs.len());
        drop(clients);
        for (k, peer) in got {
            let IpAddr::V6(v6) = peer else {
                panic!("dual-stack accept gave {peer}")
            };
            let v4 = v6.to_ipv4_mapped().expect("IPv4-mapped peer");
            assert_eq!(k, owner(peer, n), "{peer}");
            assert_eq!(k, owner(IpAddr::V4(v4), n), "{v4}");
        }
    }

    #[test]
    fn attach_error_names_option_and_fix() {
        let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        s.bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())
            .unwrap();
        s.listen(8).unwrap();
        // No SO_REUSEPORT: EINVAL.
        let e = attach(s.as_raw_fd(), 2).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
        let msg = e.to_string();
        assert!(msg.contains("SO_ATTACH_REUSEPORT_CBPF"), "{msg}");
        assert!(msg.contains("SO_REUSEPORT set"), "{msg}");
        let e = attach(s.as_raw_fd(), 0).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        let e = bind_group("127.0.0.1:0".parse().unwrap(), 0, 8).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }
}

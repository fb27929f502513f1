//! The channel between the master and one generation: a unix
//! `SOCK_SEQPACKET` socket pair. Each message is one record, its encoding
//! (`message.rs`) and, optionally, file descriptors (SCM_RIGHTS): listening sockets,
//! a connection accepted by a retiring generation, a memfd holding the
//! configuration text or the state carried from one generation to the
//! next. Records keep their boundaries, so a message and its descriptors
//! always arrive together and several threads may send on one end.

use crate::process::message::{DecodeError, Message};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// The most descriptors one message carries (the kernel's SCM_MAX_FD is
/// 253).
pub(crate) const MAX_FDS: usize = 250;
/// The largest record.
const MAX_TEXT: usize = 64 << 10;

/// A message as it arrived (or why its record is not one), and the
/// descriptors that came with it.
pub(crate) type Received<M> = (Result<M, DecodeError>, Vec<OwnedFd>);

/// One end of a master–generation channel.
#[derive(Debug)]
pub(crate) struct Channel(OwnedFd);

impl Channel {
    /// A connected pair, both ends close-on-exec.
    pub(crate) fn pair() -> io::Result<(Channel, Channel)> {
        let mut fds = [0 as RawFd; 2];
        // SAFETY: socketpair writes two descriptors into `fds`.
        let rc = unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
                0,
                fds.as_mut_ptr(),
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both descriptors were just created and are owned here.
        Ok(unsafe {
            (
                Channel(OwnedFd::from_raw_fd(fds[0])),
                Channel(OwnedFd::from_raw_fd(fds[1])),
            )
        })
    }

    /// Takes over an inherited descriptor (a generation's end, passed by
    /// number on its command line) and makes it close-on-exec again.
    ///
    /// # Safety
    /// `fd` must be an open channel end that nothing else owns.
    pub(crate) unsafe fn from_inherited(fd: RawFd) -> io::Result<Channel> {
        // SAFETY: the caller hands over ownership of an open descriptor.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut ty: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: getsockopt writes an int into `ty`.
        let rc = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_TYPE,
                (&mut ty as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        if rc != 0 || ty != libc::SOCK_SEQPACKET {
            std::mem::forget(owned); // not ours to close
            return Err(io::Error::other(format!(
                "descriptor {fd} is not a corral master channel"
            )));
        }
        // SAFETY: plain fcntl on an owned descriptor.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        Ok(Channel(owned))
    }

    /// Another handle on the same end (one thread reads while another
    /// writes).
    pub(crate) fn try_clone(&self) -> io::Result<Channel> {
        Ok(Channel(self.0.try_clone()?))
    }

    /// Sends one message with `fds`. `nonblocking`: fail with WouldBlock
    /// instead of waiting for room (the master never waits on a stuck
    /// generation).
    pub(crate) fn send(
        &self,
        msg: &impl Message,
        fds: &[RawFd],
        nonblocking: bool,
    ) -> io::Result<()> {
        self.send_record(&msg.encode(), fds, nonblocking)
    }

    /// Receives one message; `None` when the other end has closed. A
    /// record that is not an `M` is `Err` inside, with its descriptors.
    pub(crate) fn recv<M: Message>(&self) -> io::Result<Option<Received<M>>> {
        Ok(self
            .recv_record()?
            .map(|(bytes, fds)| (M::decode(&bytes), fds)))
    }

    /// Sends one record.
    fn send_record(&self, bytes: &[u8], fds: &[RawFd], nonblocking: bool) -> io::Result<()> {
        assert!(fds.len() <= MAX_FDS, "too many descriptors in one message");
        let mut iov = libc::iovec {
            iov_base: bytes.as_ptr() as *mut libc::c_void,
            iov_len: bytes.len(),
        };
        // SAFETY: CMSG_SPACE only computes a size.
        let space = unsafe { libc::CMSG_SPACE(std::mem::size_of_val(fds) as u32) } as usize;
        let mut control = vec![0u64; space.div_ceil(8)];
        // SAFETY: zeroed msghdr is a valid empty header.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        if !fds.is_empty() {
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = space as _;
            // SAFETY: the control buffer has room for one header with
            // `fds.len()` descriptors (CMSG_SPACE above).
            unsafe {
                let cmsg = libc::CMSG_FIRSTHDR(&msg);
                (*cmsg).cmsg_level = libc::SOL_SOCKET;
                (*cmsg).cmsg_type = libc::SCM_RIGHTS;
                (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of_val(fds) as u32) as _;
                std::ptr::copy_nonoverlapping(
                    fds.as_ptr(),
                    libc::CMSG_DATA(cmsg).cast::<RawFd>(),
                    fds.len(),
                );
            }
        }
        let flags = libc::MSG_NOSIGNAL | if nonblocking { libc::MSG_DONTWAIT } else { 0 };
        loop {
            // SAFETY: `msg` points at live buffers for the whole call.
            let n = unsafe { libc::sendmsg(self.0.as_raw_fd(), &msg, flags) };
            if n >= 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    /// Receives one record; `None` when the other end has closed.
    fn recv_record(&self) -> io::Result<Option<(Vec<u8>, Vec<OwnedFd>)>> {
        let mut buf = vec![0u8; MAX_TEXT];
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: CMSG_SPACE only computes a size.
        let space =
            unsafe { libc::CMSG_SPACE((MAX_FDS * std::mem::size_of::<RawFd>()) as u32) } as usize;
        let mut control = vec![0u64; space.div_ceil(8)];
        // SAFETY: zeroed msghdr is a valid empty header.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        let n = loop {
            // SAFETY: `msg` points at live buffers for the whole call.
            let n = unsafe { libc::recvmsg(self.0.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
            if n >= 0 {
                break n as usize;
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        };
        // Take ownership of every descriptor first, so none leaks on error.
        let mut fds = Vec::new();
        // SAFETY: walking the control messages the kernel wrote.
        unsafe {
            let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
            while !cmsg.is_null() {
                if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                    let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
                    let len = (*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                    for i in 0..len / std::mem::size_of::<RawFd>() {
                        fds.push(OwnedFd::from_raw_fd(data.add(i).read_unaligned()));
                    }
                }
                cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
            }
        }
        if msg.msg_flags & (libc::MSG_TRUNC | libc::MSG_CTRUNC) != 0 {
            return Err(io::Error::other("a channel message was truncated"));
        }
        if n == 0 && fds.is_empty() {
            return Ok(None);
        }
        buf.truncate(n);
        Ok(Some((buf, fds)))
    }

    pub(crate) fn raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// A memfd holding `bytes`, positioned at its start: how a configuration
/// text or a state dump travels (it may exceed a message's size).
pub(crate) fn memfd(name: &str, bytes: &[u8]) -> io::Result<OwnedFd> {
    let cname = std::ffi::CString::new(name).map_err(io::Error::other)?;
    // SAFETY: memfd_create with a valid C string.
    let fd = unsafe { libc::memfd_create(cname.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor we own.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut file = std::fs::File::from(owned);
    use std::io::{Seek, Write};
    file.write_all(bytes)?;
    file.seek(std::io::SeekFrom::Start(0))?;
    Ok(file.into())
}

/// Reads a memfd (or any file descriptor) from its current position to
/// the end.
pub(crate) fn read_all(fd: OwnedFd) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut file = std::fs::File::from(fd);
    let mut out = Vec::new();
    file.read_to_end(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::message::{ToGeneration, ToMaster};

    #[test]
    fn records_keep_their_boundaries_and_descriptors() {
        let (a, b) = Channel::pair().unwrap();
        let f1 = memfd("one", b"first").unwrap();
        let f2 = memfd("two", b"second").unwrap();
        a.send_record(b"files 1 2", &[f1.as_raw_fd(), f2.as_raw_fd()], false)
            .unwrap();
        a.send_record(b"plain", &[], false).unwrap();
        let (text, fds) = b.recv_record().unwrap().unwrap();
        assert_eq!(text, b"files 1 2");
        assert_eq!(fds.len(), 2);
        let mut it = fds.into_iter();
        assert_eq!(read_all(it.next().unwrap()).unwrap(), b"first");
        assert_eq!(read_all(it.next().unwrap()).unwrap(), b"second");
        let (text, fds) = b.recv_record().unwrap().unwrap();
        assert_eq!((text.as_slice(), fds.len()), (&b"plain"[..], 0));
        drop(a);
        assert!(b.recv_record().unwrap().is_none());
    }

    #[test]
    fn messages_travel_with_their_descriptors() {
        let (master, generation) = Channel::pair().unwrap();
        let config = memfd("config", b"[global]\n").unwrap();
        let sent = ToGeneration::Config {
            path: "/etc/corral.toml".into(),
        };
        master.send(&sent, &[config.as_raw_fd()], false).unwrap();
        let (got, fds) = generation.recv::<ToGeneration>().unwrap().unwrap();
        assert_eq!(got, Ok(sent));
        assert_eq!(
            read_all(fds.into_iter().next().unwrap()).unwrap(),
            b"[global]\n"
        );
        // The other direction; a record that is no message of the
        // receiver's keeps its descriptors, and the channel goes on.
        let state = memfd("state", b"corral-state 1\n").unwrap();
        generation
            .send(&ToMaster::State, &[state.as_raw_fd()], false)
            .unwrap();
        generation.send(&ToMaster::Ready, &[], true).unwrap();
        let (got, fds) = master.recv::<ToGeneration>().unwrap().unwrap();
        assert_eq!((got, fds.len()), (Ok(ToGeneration::State), 1));
        let (got, fds) = master.recv::<ToGeneration>().unwrap().unwrap();
        assert_eq!(
            (got, fds.len()),
            (Err(DecodeError::UnknownTag("ready".into())), 0)
        );
        drop(generation);
        assert!(master.recv::<ToMaster>().unwrap().is_none());
    }
}

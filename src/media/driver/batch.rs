//! `recvmmsg`/`sendmmsg` (Linux): up to [`BATCH`] datagrams per system call, received into
//! and sent from one set of preallocated buffers, so a relayed packet is never copied; or
//! sent from slices the caller holds (what a tick generated, see `tick_queue`).
//!
//! The `mmsghdr`/`iovec` arrays hold raw pointers into the buffers (or the caller's
//! slices); they are filled in right before each call (the struct lives in one `Box` that
//! does not move meanwhile), so no pointer outlives the borrow it was taken from.

use std::io;
use std::mem;
use std::net::SocketAddr;
use std::os::fd::RawFd;

use socket2::SockAddr;

/// Datagrams per system call.
pub const BATCH: usize = 32;
/// Largest datagram received whole; longer ones are truncated and dropped.
pub const MAX_DATAGRAM: usize = 2048;

/// One received datagram's metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// Who sent it (`None`: not an IP address, never expected).
    pub src: Option<SocketAddr>,
    /// Its length.
    pub len: usize,
    /// It did not fit the buffer.
    pub truncated: bool,
}

/// A datagram to send from the batch buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outgoing {
    /// Index of the buffer holding it.
    pub buffer: usize,
    /// Bytes to send.
    pub len: usize,
    /// Destination.
    pub to: SocketAddr,
}

/// Buffers and kernel structures for batched receive and send.
pub struct MmsgBatch {
    buffers: Box<[[u8; MAX_DATAGRAM]]>,
    received: [Received; BATCH],
    names: [libc::sockaddr_storage; BATCH],
    iovecs: [libc::iovec; BATCH],
    headers: [libc::mmsghdr; BATCH],
}

impl std::fmt::Debug for MmsgBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MmsgBatch").finish_non_exhaustive()
    }
}

fn empty_header() -> libc::mmsghdr {
    // SAFETY: mmsghdr is a plain C struct of integers and raw pointers; all zeroes (null
    // pointers, zero lengths) is a valid value.
    unsafe { mem::zeroed() }
}

fn empty_name() -> libc::sockaddr_storage {
    // SAFETY: sockaddr_storage is plain bytes; all zeroes is AF_UNSPEC.
    unsafe { mem::zeroed() }
}

const NAME_LEN: libc::socklen_t = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;

/// Points header `index` at `bytes` for `to`; false if `index` is beyond the batch. The
/// header keeps a raw pointer to `bytes`: only a `sendmmsg` made within the caller's borrow
/// of `bytes` may use it.
fn prepare(
    names: &mut [libc::sockaddr_storage],
    iovecs: &mut [libc::iovec],
    headers: &mut [libc::mmsghdr],
    index: usize,
    (bytes, to): (&[u8], SocketAddr),
) -> bool {
    let (Some(name), Some(iovec), Some(header)) = (
        names.get_mut(index),
        iovecs.get_mut(index),
        headers.get_mut(index),
    ) else {
        return false;
    };
    let address = SockAddr::from(to);
    let name_len = address.len();
    *name = address.as_storage();
    // sendmmsg only reads through iov_base; the pointer is mutable by the C type alone.
    *iovec = libc::iovec {
        iov_base: bytes.as_ptr().cast_mut().cast(),
        iov_len: bytes.len(),
    };
    *header = empty_header();
    header.msg_hdr.msg_name = (name as *mut libc::sockaddr_storage).cast();
    header.msg_hdr.msg_namelen = name_len;
    header.msg_hdr.msg_iov = iovec;
    header.msg_hdr.msg_iovlen = 1;
    true
}

impl MmsgBatch {
    /// Allocates the buffers (once per driver).
    pub fn new() -> Box<Self> {
        Box::new(Self {
            buffers: vec![[0u8; MAX_DATAGRAM]; BATCH].into_boxed_slice(),
            received: [Received {
                src: None,
                len: 0,
                truncated: false,
            }; BATCH],
            names: [empty_name(); BATCH],
            iovecs: [libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            }; BATCH],
            headers: [empty_header(); BATCH],
        })
    }

    /// Receives up to [`BATCH`] queued datagrams without blocking; returns how many
    /// (`WouldBlock` when none was queued).
    pub fn receive(&mut self, fd: RawFd) -> io::Result<usize> {
        for i in 0..BATCH {
            let (Some(buffer), Some(iovec), Some(name), Some(header)) = (
                self.buffers.get_mut(i),
                self.iovecs.get_mut(i),
                self.names.get_mut(i),
                self.headers.get_mut(i),
            ) else {
                break;
            };
            *iovec = libc::iovec {
                iov_base: buffer.as_mut_ptr().cast(),
                iov_len: MAX_DATAGRAM,
            };
            *header = empty_header();
            header.msg_hdr.msg_name = (name as *mut libc::sockaddr_storage).cast();
            header.msg_hdr.msg_namelen = NAME_LEN;
            header.msg_hdr.msg_iov = iovec;
            header.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: every header points at a live iovec, buffer and name in `self`, with the
        // lengths of those objects; `self` is borrowed mutably for the whole call.
        let count = unsafe {
            libc::recvmmsg(
                fd,
                self.headers.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if count < 0 {
            return Err(io::Error::last_os_error());
        }
        let count = usize::try_from(count).unwrap_or(0).min(BATCH);
        for i in 0..count {
            let (Some(header), Some(name), Some(received)) = (
                self.headers.get(i),
                self.names.get(i),
                self.received.get_mut(i),
            ) else {
                break;
            };
            // SAFETY: the kernel wrote a socket address of `msg_namelen` bytes into `name`.
            let src = unsafe { SockAddr::new(*name, header.msg_hdr.msg_namelen) }.as_socket();
            *received = Received {
                src,
                len: usize::try_from(header.msg_len)
                    .unwrap_or(0)
                    .min(MAX_DATAGRAM),
                truncated: header.msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
            };
        }
        Ok(count)
    }

    /// What [`Self::receive`] put in buffer `index`.
    pub fn received(&self, index: usize) -> Option<Received> {
        self.received.get(index).copied()
    }

    /// Buffer `index`, for in-place rewriting.
    pub fn buffer_mut(&mut self, index: usize) -> Option<&mut [u8; MAX_DATAGRAM]> {
        self.buffers.get_mut(index)
    }

    /// Sends `outgoing` (at most [`BATCH`]) from their buffers on `fd` without blocking;
    /// returns how many the kernel took (`WouldBlock` when none).
    pub fn send(&mut self, fd: RawFd, outgoing: &[Outgoing]) -> io::Result<usize> {
        let mut count = 0;
        for item in outgoing.iter().take(BATCH) {
            let Self {
                buffers,
                names,
                iovecs,
                headers,
                ..
            } = &mut *self;
            let Some(buffer) = buffers.get(item.buffer) else {
                break;
            };
            let bytes = buffer.get(..item.len).unwrap_or(buffer);
            if !prepare(names, iovecs, headers, count, (bytes, item.to)) {
                break;
            }
            count += 1;
        }
        self.send_prepared(fd, count)
    }

    /// Sends `datagrams` (at most [`BATCH`]: bytes and destination, e.g. slices of one
    /// arena) on `fd` without blocking; returns how many the kernel took (`WouldBlock` when
    /// none).
    pub fn send_slices<'a>(
        &mut self,
        fd: RawFd,
        datagrams: impl IntoIterator<Item = (&'a [u8], SocketAddr)>,
    ) -> io::Result<usize> {
        let mut count = 0;
        for datagram in datagrams.into_iter().take(BATCH) {
            let Self {
                names,
                iovecs,
                headers,
                ..
            } = &mut *self;
            if !prepare(names, iovecs, headers, count, datagram) {
                break;
            }
            count += 1;
        }
        self.send_prepared(fd, count)
    }

    /// `sendmmsg` of the first `count` prepared headers.
    fn send_prepared(&mut self, fd: RawFd, count: usize) -> io::Result<usize> {
        if count == 0 {
            return Ok(0);
        }
        // SAFETY: the first `count` headers were prepared by the caller's `prepare` calls,
        // within the same borrow of the datagrams' bytes: they point at live iovecs and
        // names in `self` and at those bytes, with their lengths; the kernel only reads them.
        let sent = unsafe {
            libc::sendmmsg(
                fd,
                self.headers.as_mut_ptr(),
                count.min(BATCH) as libc::c_uint,
                libc::MSG_DONTWAIT,
            )
        };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(usize::try_from(sent).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;

    #[test]
    fn receives_and_sends_a_batch_over_loopback() {
        let a = UdpSocket::bind("127.0.0.1:0").expect("bind a");
        let b = UdpSocket::bind("127.0.0.1:0").expect("bind b");
        b.set_nonblocking(true).expect("nonblocking");
        let mut batch = MmsgBatch::new();
        assert_eq!(
            batch.receive(b.as_raw_fd()).map_err(|e| e.kind()),
            Err(io::ErrorKind::WouldBlock)
        );
        let b_addr = b.local_addr().expect("addr");
        for n in 0..5u8 {
            a.send_to(&[n; 10], b_addr).expect("send");
        }
        // Loopback delivers synchronously, so all five are queued now.
        let count = batch.receive(b.as_raw_fd()).expect("receive");
        assert_eq!(count, 5);
        for n in 0..5 {
            let got = batch.received(n).expect("meta");
            assert_eq!(got.src, Some(a.local_addr().expect("addr")));
            assert_eq!((got.len, got.truncated), (10, false));
            assert_eq!(batch.buffer_mut(n).expect("buffer")[..10], [n as u8; 10]);
        }
        // Send them back in one call.
        let back: Vec<Outgoing> = (0..5)
            .map(|n| Outgoing {
                buffer: n,
                len: 10,
                to: a.local_addr().expect("addr"),
            })
            .collect();
        assert_eq!(batch.send(b.as_raw_fd(), &back).expect("send"), 5);
        let mut buf = [0u8; 64];
        for n in 0..5u8 {
            let (len, from) = a.recv_from(&mut buf).expect("echo");
            assert_eq!((len, from), (10, b_addr));
            assert_eq!(buf[..10], [n; 10]);
        }
        // A datagram longer than the buffers is flagged.
        a.send_to(&[1u8; MAX_DATAGRAM + 10], b_addr).expect("send");
        assert_eq!(batch.receive(b.as_raw_fd()).expect("receive"), 1);
        assert!(batch.received(0).expect("meta").truncated);
    }
}

//! Shared by the network load generators (`media_load`, `conference_load_net`): batched
//! receive with kernel timestamps, socket options, the clocks and CPU readings they report.
//! Included with `#[path = "support/load.rs"] mod load;` (not an example of its own).

#![allow(dead_code)]

use std::io;
use std::time::Instant;

/// Datagrams per recvmmsg call.
pub const BATCH: usize = 32;
/// Receive buffer per datagram (larger ones are counted as malformed).
pub const RECEIVE_BYTES: usize = 512;

pub fn set_int_option(
    fd: libc::c_int,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> bool {
    // SAFETY: a valid descriptor and a pointer to an int of the given size.
    unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        ) == 0
    }
}

pub fn realtime_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// recvmmsg buffers with room for a timestamp control message each.
pub struct Receiver {
    buffers: Vec<[u8; RECEIVE_BYTES]>,
    controls: Vec<[u64; 8]>,
    iovecs: Vec<libc::iovec>,
    headers: Vec<libc::mmsghdr>,
}

impl Receiver {
    pub fn new() -> Self {
        Self {
            buffers: vec![[0; RECEIVE_BYTES]; BATCH],
            controls: vec![[0; 8]; BATCH],
            iovecs: vec![
                libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0,
                };
                BATCH
            ],
            // SAFETY: mmsghdr is plain data; zeroes are empty headers.
            headers: (0..BATCH).map(|_| unsafe { std::mem::zeroed() }).collect(),
        }
    }

    pub fn receive(&mut self, fd: libc::c_int) -> io::Result<usize> {
        for i in 0..BATCH {
            self.iovecs[i] = libc::iovec {
                iov_base: self.buffers[i].as_mut_ptr().cast(),
                iov_len: RECEIVE_BYTES,
            };
            // SAFETY: plain data.
            self.headers[i] = unsafe { std::mem::zeroed() };
            let header = &mut self.headers[i].msg_hdr;
            header.msg_iov = &mut self.iovecs[i];
            header.msg_iovlen = 1;
            header.msg_control = self.controls[i].as_mut_ptr().cast();
            header.msg_controllen = std::mem::size_of::<[u64; 8]>();
        }
        // SAFETY: every header points at a live iovec, buffer and control buffer of self.
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
        Ok(usize::try_from(count).unwrap_or(0))
    }

    /// Datagram `i`, its kernel receive time (CLOCK_REALTIME ns) if it came with one, and
    /// whether it was cut short.
    pub fn datagram(&self, i: usize) -> Option<(&[u8], Option<u64>, bool)> {
        let header = self.headers.get(i)?;
        let len = (header.msg_len as usize).min(RECEIVE_BYTES);
        let truncated = header.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
        let mut stamp = None;
        // SAFETY: the kernel filled msg_control/msg_controllen of this header; the CMSG
        // macros walk within it.
        unsafe {
            let mut cmsg = libc::CMSG_FIRSTHDR(&header.msg_hdr);
            while !cmsg.is_null() {
                if (*cmsg).cmsg_level == libc::SOL_SOCKET
                    && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS
                {
                    let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                    stamp = Some(
                        (ts.tv_sec as u64)
                            .saturating_mul(1_000_000_000)
                            .saturating_add(ts.tv_nsec as u64),
                    );
                }
                cmsg = libc::CMSG_NXTHDR(&header.msg_hdr, cmsg);
            }
        }
        Some((self.buffers.get(i)?.get(..len)?, stamp, truncated))
    }
}

/// utime + stime of a process, in clock ticks (None once it is gone).
pub fn process_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(") ")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Busy and steal clock ticks of all CPUs together (/proc/stat).
pub fn machine_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    let busy = [0, 1, 2, 5, 6].iter().filter_map(|&i| fields.get(i)).sum();
    Some((busy, fields.get(7).copied().unwrap_or(0)))
}

pub fn own_cpu_seconds() -> f64 {
    // SAFETY: rusage is plain data; getrusage fills it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a rusage.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return f64::NAN;
    }
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

pub fn raise_fd_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

pub fn sleep_until(when: Instant) {
    if let Some(wait) = when.checked_duration_since(Instant::now()) {
        std::thread::sleep(wait);
    }
}

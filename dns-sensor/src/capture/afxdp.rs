//! AF_XDP sockets, one per receive queue (xsk-rs over libxdp).
//!
//! Each queue gets its own UMEM (frame memory) and socket, created with
//! `XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD` so libxdp does not load its own program (which
//! would redirect everything, ARP included): our program in `capture::xdp` redirects only
//! DNS, and each socket's fd goes into its `XSKMAP` at the queue index. Zero-copy is tried
//! first where asked and copy mode used when the driver refuses it (veth always does).
//!
//! A [`QueueSocket`] is driven from one thread: [`QueueSocket::poll`] hands out frames
//! borrowed from the UMEM, then returns their buffers to the fill ring. Nothing is
//! allocated, counted or logged per frame.

use std::{
    io,
    num::NonZeroU32,
    os::fd::{AsRawFd, RawFd},
    str::FromStr,
    thread,
    time::Duration,
};

use xsk_rs::{
    config::{BindFlags, FrameSize, Interface, LibxdpFlags, QueueSize, SocketConfig, UmemConfig},
    CompQueue, FillQueue, FrameDesc, RxQueue, Socket, TxQueue, Umem,
};

use super::{Frame, LinkType};

/// Whether to use zero-copy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ZeroCopy {
    /// Zero-copy where the driver supports it, copy mode otherwise.
    #[default]
    Auto,
    /// Zero-copy or fail.
    Require,
    /// Copy mode only.
    Off,
}

/// Ring and memory sizes of one queue's socket. Sizes are powers of two.
#[derive(Clone, Copy, Debug)]
pub struct AfXdpSettings {
    /// RX ring entries (frames the kernel can queue for us).
    pub rx_ring: u32,
    /// Fill ring entries (empty buffers offered to the kernel).
    pub fill_ring: u32,
    /// Frames in the UMEM. More than the fill ring, so the kernel still has
    /// `fill_ring` buffers while a full RX ring waits for us.
    pub frames: u32,
    /// Bytes per frame (2048 or 4096).
    pub frame_size: u32,
    /// Zero-copy policy.
    pub zero_copy: ZeroCopy,
    /// Frames taken from the RX ring per batch.
    pub batch: usize,
}

impl Default for AfXdpSettings {
    /// Sizes measured on this project's test machine: an RX ring of 2048 dropped frames
    /// under VM scheduling hiccups, these did not (docs/live-capture.md).
    fn default() -> Self {
        Self {
            rx_ring: 8192,
            fill_ring: 16384,
            frames: 32768,
            frame_size: 2048,
            zero_copy: ZeroCopy::Auto,
            batch: 64,
        }
    }
}

/// What can go wrong opening or reading an AF_XDP socket.
#[derive(Debug, thiserror::Error)]
pub enum AfXdpError {
    /// A ring or frame size is not a power of two, or frames cannot fill the fill ring.
    #[error("bad AF_XDP sizes: {0}")]
    BadSettings(String),
    /// The UMEM could not be created (often: RLIMIT_MEMLOCK without CAP_IPC_LOCK).
    #[error("queue {queue}: creating the UMEM ({bytes} bytes) failed: {source}")]
    Umem {
        /// The queue.
        queue: u32,
        /// Its size.
        bytes: u64,
        /// The error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The socket could not be created or bound.
    #[error("queue {queue}: creating the AF_XDP socket ({mode}) failed: {source}")]
    Socket {
        /// The queue.
        queue: u32,
        /// "zero-copy" or "copy".
        mode: &'static str,
        /// The OS error, if libxdp reported one.
        source: io::Error,
    },
    /// poll(2) or getsockopt(2) failed on the socket.
    #[error("queue {queue}: {what}: {source}")]
    Io {
        /// The queue.
        queue: u32,
        /// What was being done.
        what: &'static str,
        /// The error.
        source: io::Error,
    },
}

/// Ring statistics of one socket, from the kernel (getsockopt XDP_STATISTICS). Counts
/// since the socket was created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingStats {
    /// Frames dropped for reasons other than a full RX ring or an empty fill ring
    /// (e.g. a frame larger than the UMEM frame).
    pub rx_dropped: u64,
    /// Frames dropped because the RX ring was full: the worker is too slow.
    pub rx_ring_full: u64,
    /// Times the kernel found the fill ring empty: frames are not returned fast enough.
    pub fill_ring_empty: u64,
    /// Invalid descriptors we put in the fill ring (a bug if not zero).
    pub rx_invalid_descs: u64,
}

/// One receive queue's AF_XDP socket, its UMEM and rings.
pub struct QueueSocket {
    queue: u32,
    zero_copy: bool,
    umem: Umem,
    rx: RxQueue,
    fill: FillQueue,
    // Unused, but xsk-rs hands them out and the kernel requires a completion ring.
    _tx: TxQueue,
    _comp: CompQueue,
    /// Descriptors of received frames (reused batch buffer).
    batch: Vec<FrameDesc>,
    /// Frames not in any ring, waiting to go (back) to the fill ring.
    free: Vec<FrameDesc>,
    received: u64,
}

impl std::fmt::Debug for QueueSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueSocket")
            .field("queue", &self.queue)
            .field("zero_copy", &self.zero_copy)
            .field("received", &self.received)
            .finish_non_exhaustive()
    }
}

/// Binding right after a previous owner of the queue exited can fail with EBUSY for
/// about a second: retry for this long.
const EBUSY_RETRIES: u32 = 30;
const EBUSY_WAIT: Duration = Duration::from_millis(100);

fn queue_size(what: &str, n: u32) -> Result<QueueSize, AfXdpError> {
    QueueSize::new(n).map_err(|e| AfXdpError::BadSettings(format!("{what} {n}: {e}")))
}

impl QueueSocket {
    /// Opens the socket of rx queue `queue` of `interface`. Sockets of one interface must
    /// be opened one after the other (creating them concurrently fails with EBUSY in
    /// driver mode): see [`open_all`].
    pub fn open(interface: &str, queue: u32, settings: &AfXdpSettings) -> Result<Self, AfXdpError> {
        if settings.frames < settings.fill_ring {
            return Err(AfXdpError::BadSettings(format!(
                "{} frames cannot fill a fill ring of {}",
                settings.frames, settings.fill_ring
            )));
        }
        if settings.batch == 0 {
            return Err(AfXdpError::BadSettings("batch must be at least 1".into()));
        }
        let modes: &[bool] = match settings.zero_copy {
            ZeroCopy::Auto => &[true, false],
            ZeroCopy::Require => &[true],
            ZeroCopy::Off => &[false],
        };
        let mut last = None;
        for &zc in modes {
            match Self::open_mode(interface, queue, settings, zc) {
                Ok(s) => return Ok(s),
                // Zero-copy refused by the driver (EOPNOTSUPP on veth): try copy mode.
                Err(e @ AfXdpError::Socket { .. }) if zc && modes.len() > 1 => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| AfXdpError::BadSettings("no mode to try".into())))
    }

    fn open_mode(
        interface: &str,
        queue: u32,
        settings: &AfXdpSettings,
        zero_copy: bool,
    ) -> Result<Self, AfXdpError> {
        let frame_size = FrameSize::new(settings.frame_size).map_err(|e| {
            AfXdpError::BadSettings(format!("frame size {}: {e}", settings.frame_size))
        })?;
        let umem_config = UmemConfig::builder()
            .frame_size(frame_size)
            .fill_queue_size(queue_size("fill ring", settings.fill_ring)?)
            .comp_queue_size(queue_size("completion ring", 64)?)
            .build()
            .map_err(|e| AfXdpError::BadSettings(e.to_string()))?;
        let frames = NonZeroU32::new(settings.frames)
            .ok_or_else(|| AfXdpError::BadSettings("0 frames".into()))?;
        let mode = if zero_copy { "zero-copy" } else { "copy" };
        let mut bind = BindFlags::XDP_USE_NEED_WAKEUP;
        bind |= if zero_copy {
            BindFlags::XDP_ZEROCOPY
        } else {
            BindFlags::XDP_COPY
        };
        let socket_config = SocketConfig::builder()
            .rx_queue_size(queue_size("rx ring", settings.rx_ring)?)
            .tx_queue_size(queue_size("tx ring", 64)?)
            .libxdp_flags(LibxdpFlags::XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD)
            .bind_flags(bind)
            .build();
        let ifname =
            Interface::from_str(interface).map_err(|e| AfXdpError::BadSettings(e.to_string()))?;

        let mut attempt = 0;
        loop {
            // A fresh UMEM per attempt: a failed bind leaves libxdp's state for this one
            // behind, and this happens only at start-up.
            let (umem, descs) =
                Umem::new(umem_config, frames, false).map_err(|e| AfXdpError::Umem {
                    queue,
                    bytes: u64::from(settings.frames) * u64::from(settings.frame_size),
                    source: Box::new(e),
                })?;
            // SAFETY: the UMEM outlives the socket (both are owned by the QueueSocket and
            // xsk-rs keeps the UMEM alive through the socket's own handle).
            match unsafe { Socket::new(socket_config, &umem, &ifname, queue) } {
                Ok((tx, rx, Some((fill, comp)))) => {
                    let mut s = Self {
                        queue,
                        zero_copy,
                        umem,
                        rx,
                        fill,
                        _tx: tx,
                        _comp: comp,
                        batch: vec![FrameDesc::default(); settings.batch],
                        free: descs,
                        received: 0,
                    };
                    s.refill();
                    return Ok(s);
                }
                Ok((_, _, None)) => {
                    return Err(AfXdpError::BadSettings(
                        "libxdp shared an existing fill ring with a new UMEM".into(),
                    ))
                }
                Err(e) => {
                    // Keep the errno (EOPNOTSUPP, EBUSY...) when libxdp gave one.
                    let source = std::error::Error::source(&e)
                        .and_then(|s| s.downcast_ref::<io::Error>())
                        .and_then(io::Error::raw_os_error)
                        .map_or_else(
                            || io::Error::other(e.to_string()),
                            io::Error::from_raw_os_error,
                        );
                    if source.raw_os_error() == Some(libc::EBUSY) && attempt < EBUSY_RETRIES {
                        attempt += 1;
                        thread::sleep(EBUSY_WAIT);
                        continue;
                    }
                    return Err(AfXdpError::Socket {
                        queue,
                        mode,
                        source,
                    });
                }
            }
        }
    }

    /// The rx queue this socket reads.
    pub fn queue(&self) -> u32 {
        self.queue
    }

    /// Whether the socket is bound in zero-copy mode.
    pub fn is_zero_copy(&self) -> bool {
        self.zero_copy
    }

    /// Frames handed out by [`poll`](Self::poll) so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Waits up to `timeout` for frames, then hands each available one (up to a batch)
    /// to `f` as an Ethernet frame stamped with the arrival clock, and gives the buffers
    /// back to the kernel. Returns how many frames `f` saw (0 on timeout or a signal).
    pub fn poll(
        &mut self,
        timeout: Duration,
        mut f: impl FnMut(Frame<'_>),
    ) -> Result<usize, AfXdpError> {
        // SAFETY: `batch` descriptors are written by consume and refer to this UMEM.
        let mut n = unsafe { self.rx.consume(&mut self.batch) };
        if n == 0 {
            let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
            // Also the wakeup the kernel asks for in need-wakeup mode.
            let ready = self.rx.poll(ms).map_err(|source| AfXdpError::Io {
                queue: self.queue,
                what: "poll",
                source,
            })?;
            if !ready {
                return Ok(0);
            }
            // SAFETY: as above.
            n = unsafe { self.rx.consume(&mut self.batch) };
            if n == 0 {
                return Ok(0);
            }
        }
        let ts = crate::clock::arrival_now();
        for desc in &self.batch[..n] {
            // SAFETY: the kernel handed this frame to us through the RX ring and it goes
            // back to the fill ring only after `f` returns; `f` cannot keep the borrow.
            let data = unsafe { self.umem.data(desc) };
            f(Frame {
                ts,
                link: LinkType::Ethernet,
                data: data.contents(),
            });
        }
        self.free.extend_from_slice(&self.batch[..n]);
        self.received += n as u64;
        self.refill();
        if self.fill.needs_wakeup() {
            self.fill
                .wakeup(self.rx.fd_mut(), 0)
                .map_err(|source| AfXdpError::Io {
                    queue: self.queue,
                    what: "fill ring wakeup",
                    source,
                })?;
        }
        Ok(n)
    }

    /// Moves as many free frames as fit into the fill ring.
    fn refill(&mut self) {
        let room = self.fill.nb_free(self.free.len() as u32) as usize;
        let k = room.min(self.free.len());
        if k == 0 {
            return;
        }
        let start = self.free.len() - k;
        // SAFETY: these frames belong to this UMEM and are in no ring nor borrowed.
        let put = unsafe { self.fill.produce(&self.free[start..]) };
        // produce is all-or-nothing: `put` is k or 0.
        self.free.truncate(self.free.len() - put);
    }

    /// The kernel's ring statistics for this socket.
    pub fn stats(&self) -> Result<RingStats, AfXdpError> {
        let s = self
            .rx
            .fd()
            .xdp_statistics()
            .map_err(|source| AfXdpError::Io {
                queue: self.queue,
                what: "getsockopt(XDP_STATISTICS)",
                source,
            })?;
        Ok(RingStats {
            rx_dropped: s.rx_dropped(),
            rx_ring_full: s.rx_ring_full(),
            fill_ring_empty: s.rx_fill_ring_empty_descs(),
            rx_invalid_descs: s.rx_invalid_descs(),
        })
    }
}

impl AsRawFd for QueueSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.rx.fd().as_raw_fd()
    }
}

/// Opens one socket per rx queue `0..queues` of `interface`, one after the other, and
/// registers each in the program's `XSKMAP` as soon as it is bound.
pub fn open_all(
    interface: &str,
    queues: u32,
    settings: &AfXdpSettings,
    program: &mut super::xdp::XdpProgram,
) -> Result<Vec<QueueSocket>, OpenAllError> {
    let mut sockets = Vec::with_capacity(queues as usize);
    for queue in 0..queues {
        let s = QueueSocket::open(interface, queue, settings)?;
        program.register_socket(queue, &s)?;
        sockets.push(s);
    }
    Ok(sockets)
}

impl AsRawFd for &QueueSocket {
    fn as_raw_fd(&self) -> RawFd {
        (**self).as_raw_fd()
    }
}

/// Why [`open_all`] failed.
#[derive(Debug, thiserror::Error)]
pub enum OpenAllError {
    /// Opening a socket failed.
    #[error(transparent)]
    Socket(#[from] AfXdpError),
    /// Registering it in the `XSKMAP` failed.
    #[error(transparent)]
    Register(#[from] super::xdp::XdpError),
}

/// Pins the calling thread to `cpu` (one worker per queue, each on its own core, keeps
/// a queue's frames in one core's cache).
pub fn pin_current_thread(cpu: usize) -> io::Result<()> {
    // SAFETY: cpu_set_t is plain data; CPU_SET stays within it for cpu < CPU_SETSIZE.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if cpu >= libc::CPU_SETSIZE as usize {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_sizes_are_the_measured_ones() {
        let s = AfXdpSettings::default();
        assert_eq!(
            (s.rx_ring, s.fill_ring, s.frames, s.frame_size),
            (8192, 16384, 32768, 2048)
        );
    }

    #[test]
    fn bad_sizes_are_refused_before_any_syscall() {
        let s = AfXdpSettings {
            frames: 1024,
            fill_ring: 4096,
            ..Default::default()
        };
        assert!(matches!(
            QueueSocket::open("lo", 0, &s),
            Err(AfXdpError::BadSettings(_))
        ));
        let s = AfXdpSettings {
            rx_ring: 3000,
            ..Default::default()
        };
        assert!(matches!(
            QueueSocket::open("lo", 0, &s),
            Err(AfXdpError::BadSettings(_))
        ));
    }
}

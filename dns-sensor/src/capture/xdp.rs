//! The XDP side of live capture: loads the embedded `dns-sensor-ebpf` program, sets its
//! port set and mode, attaches it to an interface through a bpf_link (so nothing stays
//! attached once the process is gone, even after a crash), registers AF_XDP sockets in
//! its `XSKMAP` and reads its per-CPU counters.
//!
//! Also the checks that turn the usual start-up failures into clear, typed errors: missing
//! or down interface, missing capabilities (named), another XDP program attached.

use std::{ffi::CString, io, os::fd::AsRawFd, path::Path};

use aya::{
    maps::{Array, MapData, PerCpuArray, XskMap},
    programs::{ProgramError, Xdp, XdpMode},
    Ebpf, EbpfLoader,
};
pub use dns_sensor_common::Counters;
use dns_sensor_common::{
    port_bit, GLOBAL_MODE, MAP_COUNTERS, MAP_PORTS, MAP_XSKS, MAX_QUEUES, MODE_INLINE, MODE_MIRROR,
    PORT_BITMAP_WORDS, PROGRAM_NAME,
};

/// The XDP object built by `build.rs`.
static XDP_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/dns-sensor-ebpf"));

/// What happens to frames that are not DNS.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CaptureMode {
    /// A mirror port: nothing else wants the frames, drop them as early as possible.
    #[default]
    Mirror,
    /// The interface also carries the host's traffic: pass non-DNS frames to the stack.
    /// DNS frames on this interface go to the sensor, not to the host's sockets.
    Inline,
}

/// How the program is attached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AttachMode {
    /// Native (driver) mode, falling back to generic when the driver refuses it.
    #[default]
    Auto,
    /// Native (driver) mode only.
    Native,
    /// Generic (skb) mode: works on any interface, slower.
    Generic,
}

/// Settings of the XDP program.
#[derive(Clone, Debug)]
pub struct XdpSettings {
    /// Ports whose UDP/TCP traffic (source or destination) is DNS.
    pub ports: Vec<u16>,
    /// What to do with the rest.
    pub capture: CaptureMode,
    /// How to attach.
    pub attach: AttachMode,
}

impl Default for XdpSettings {
    fn default() -> Self {
        Self {
            ports: vec![53],
            capture: CaptureMode::Mirror,
            attach: AttachMode::Auto,
        }
    }
}

/// A Linux capability the live capture needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Capability {
    /// Attach XDP programs, bind AF_XDP sockets to a device.
    NetAdmin,
    /// Create AF_XDP sockets.
    NetRaw,
    /// Lock the UMEM (frame memory) in RAM beyond RLIMIT_MEMLOCK.
    IpcLock,
    /// Load BPF programs and create maps (CAP_SYS_ADMIN also does).
    Bpf,
    /// Let the verifier accept the program's packet-pointer arithmetic, refused
    /// "for !root" without it (CAP_SYS_ADMIN also does).
    Perfmon,
}

impl Capability {
    /// The capability's name as in capabilities(7).
    pub fn name(self) -> &'static str {
        match self {
            Capability::NetAdmin => "CAP_NET_ADMIN",
            Capability::NetRaw => "CAP_NET_RAW",
            Capability::IpcLock => "CAP_IPC_LOCK",
            Capability::Bpf => "CAP_BPF",
            Capability::Perfmon => "CAP_PERFMON",
        }
    }
}

/// What can go wrong loading or attaching the XDP program.
#[derive(Debug, thiserror::Error)]
pub enum XdpError {
    /// No interface by that name (in this network namespace).
    #[error("interface {0} does not exist")]
    InterfaceMissing(String),
    /// The interface is administratively down.
    #[error("interface {0} is down (ip link set {0} up)")]
    InterfaceDown(String),
    /// The process lacks capabilities; every missing one is named.
    #[error("missing capabilities: {} (run as root, or grant them: setcap cap_net_admin,cap_net_raw,cap_ipc_lock,cap_bpf,cap_perfmon+ep)", names(.0))]
    MissingCapabilities(Vec<Capability>),
    /// Another XDP program is attached to the interface.
    #[error("another XDP program is already attached to {0} (see `ip link show {0}`; detach it with `ip link set {0} xdp off`)")]
    AlreadyAttached(String),
    /// The kernel refused the program or the attachment.
    #[error("XDP program: {0}")]
    Program(#[from] ProgramError),
    /// The object could not be loaded (maps, BTF, relocations).
    #[error("loading the XDP object: {0}")]
    Load(#[from] aya::EbpfError),
    /// A map operation failed.
    #[error("XDP map: {0}")]
    Map(#[from] aya::maps::MapError),
    /// Attaching failed in the requested mode(s).
    #[error("attaching XDP to {interface} failed: {source}")]
    Attach {
        /// The interface.
        interface: String,
        /// Why the last attempt failed.
        source: ProgramError,
    },
    /// The interface name cannot be passed to the kernel.
    #[error("invalid interface name {0:?}")]
    BadName(String),
    /// A queue index beyond what the `XSKMAP` holds.
    #[error("rx queue {0} is beyond the {MAX_QUEUES} queues the program can address")]
    QueueOutOfRange(u32),
    /// An I/O error in the checks.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The error.
        source: io::Error,
    },
}

fn names(caps: &[Capability]) -> String {
    caps.iter().map(|c| c.name()).collect::<Vec<_>>().join(", ")
}

/// Facts about an interface, read in the caller's network namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceInfo {
    /// Kernel interface index.
    pub index: u32,
    /// Receive queues: one AF_XDP socket and worker each.
    pub rx_queues: u32,
}

/// Checks that `name` exists and is up, and counts its receive queues.
pub fn check_interface(name: &str) -> Result<InterfaceInfo, XdpError> {
    let c_name = CString::new(name).map_err(|_| XdpError::BadName(name.to_owned()))?;
    if name.len() >= libc::IFNAMSIZ {
        return Err(XdpError::BadName(name.to_owned()));
    }
    // SAFETY: c_name is a valid NUL-terminated string.
    let index = unsafe { libc::if_nametoindex(c_name.as_ptr()) };
    if index == 0 {
        return Err(XdpError::InterfaceMissing(name.to_owned()));
    }
    let sock = ioctl_socket()?;
    let mut req = ifreq_for(name);
    // SAFETY: SIOCGIFFLAGS reads into ifr_flags of a correctly sized ifreq.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(XdpError::Io {
            what: "SIOCGIFFLAGS",
            source: io::Error::last_os_error(),
        });
    }
    // SAFETY: the kernel filled the flags member of the union.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    if flags & libc::IFF_UP as i16 == 0 {
        return Err(XdpError::InterfaceDown(name.to_owned()));
    }
    let rx_queues = ethtool_rx_queues(&sock, name)
        .or_else(|| sysfs_rx_queues(name))
        .unwrap_or(1)
        .max(1);
    Ok(InterfaceInfo { index, rx_queues })
}

fn ioctl_socket() -> Result<std::os::fd::OwnedFd, XdpError> {
    // SAFETY: plain socket(2); the fd is owned right away.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(XdpError::Io {
            what: "socket for interface ioctls",
            source: io::Error::last_os_error(),
        });
    }
    // SAFETY: fd was just returned by socket(2) and is owned by nobody else.
    Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) })
}

fn ifreq_for(name: &str) -> libc::ifreq {
    // SAFETY: ifreq is plain data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    req
}

/// Channel counts through ETHTOOL_GCHANNELS: right in any network namespace, unlike /sys.
fn ethtool_rx_queues(sock: &std::os::fd::OwnedFd, name: &str) -> Option<u32> {
    const ETHTOOL_GCHANNELS: u32 = 0x3c;
    #[repr(C)]
    #[derive(Default)]
    struct EthtoolChannels {
        cmd: u32,
        max_rx: u32,
        max_tx: u32,
        max_other: u32,
        max_combined: u32,
        rx_count: u32,
        tx_count: u32,
        other_count: u32,
        combined_count: u32,
    }
    let mut ch = EthtoolChannels {
        cmd: ETHTOOL_GCHANNELS,
        ..Default::default()
    };
    let mut req = ifreq_for(name);
    req.ifr_ifru.ifru_data = (&mut ch as *mut EthtoolChannels).cast();
    // SAFETY: SIOCETHTOOL with ifru_data pointing at a live ethtool_channels.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCETHTOOL, &mut req) } < 0 {
        return None;
    }
    let n = ch.rx_count + ch.combined_count;
    (n > 0).then_some(n)
}

fn sysfs_rx_queues(name: &str) -> Option<u32> {
    let dir = Path::new("/sys/class/net").join(name).join("queues");
    let n = std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
        .count();
    u32::try_from(n).ok().filter(|&n| n > 0)
}

/// Returns the capabilities live capture needs that this process lacks (effective set).
///
/// CAP_BPF and CAP_PERFMON are satisfied by CAP_SYS_ADMIN; CAP_IPC_LOCK by an unlimited
/// RLIMIT_MEMLOCK.
pub fn missing_capabilities() -> Vec<Capability> {
    let eff = effective_capabilities().unwrap_or(0);
    let has = |bit: u32| eff & (1u64 << bit) != 0;
    const NET_ADMIN: u32 = 12;
    const NET_RAW: u32 = 13;
    const IPC_LOCK: u32 = 14;
    const SYS_ADMIN: u32 = 21;
    const PERFMON: u32 = 38;
    const BPF: u32 = 39;
    let mut missing = Vec::new();
    if !has(NET_ADMIN) {
        missing.push(Capability::NetAdmin);
    }
    if !has(NET_RAW) {
        missing.push(Capability::NetRaw);
    }
    if !has(IPC_LOCK) && !memlock_unlimited() {
        missing.push(Capability::IpcLock);
    }
    if !has(BPF) && !has(SYS_ADMIN) {
        missing.push(Capability::Bpf);
    }
    if !has(PERFMON) && !has(SYS_ADMIN) {
        missing.push(Capability::Perfmon);
    }
    missing
}

/// Checks capabilities, failing with every missing one named.
pub fn check_capabilities() -> Result<(), XdpError> {
    let missing = missing_capabilities();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(XdpError::MissingCapabilities(missing))
    }
}

fn effective_capabilities() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_cap_eff(&status)
}

fn parse_cap_eff(status: &str) -> Option<u64> {
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))?
        .trim();
    u64::from_str_radix(hex, 16).ok()
}

fn memlock_unlimited() -> bool {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into a valid rlimit.
    unsafe {
        libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) == 0 && lim.rlim_cur == libc::RLIM_INFINITY
    }
}

/// The loaded program, its maps, and (once attached) its link to an interface.
///
/// Dropping it detaches the program and frees the maps.
pub struct XdpProgram {
    ebpf: Ebpf,
    xsks: XskMap<MapData>,
    counters: PerCpuArray<MapData, Counters>,
    attached: Option<(String, AttachMode)>,
}

impl std::fmt::Debug for XdpProgram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XdpProgram")
            .field("attached", &self.attached)
            .finish_non_exhaustive()
    }
}

impl XdpProgram {
    /// Loads the embedded program into the kernel (the verifier runs here) with the given
    /// mode and port set. Does not attach it.
    pub fn load(settings: &XdpSettings) -> Result<Self, XdpError> {
        let mode = match settings.capture {
            CaptureMode::Mirror => MODE_MIRROR,
            CaptureMode::Inline => MODE_INLINE,
        };
        let mut ebpf = EbpfLoader::new()
            .override_global(GLOBAL_MODE, &mode, true)
            .load(XDP_OBJECT)?;
        let prog: &mut Xdp = program(&mut ebpf)?;
        prog.load()?;

        let mut ports: Array<MapData, u64> = Array::try_from(take_map(&mut ebpf, MAP_PORTS)?)?;
        for (word, bits) in port_bitmap(&settings.ports).into_iter().enumerate() {
            if bits != 0 {
                ports.set(word as u32, bits, 0)?;
            }
        }
        let xsks = XskMap::try_from(take_map(&mut ebpf, MAP_XSKS)?)?;
        let counters = PerCpuArray::try_from(take_map(&mut ebpf, MAP_COUNTERS)?)?;
        Ok(Self {
            ebpf,
            xsks,
            counters,
            attached: None,
        })
    }

    /// Attaches to `interface` as `mode` asks. Returns the mode actually used
    /// ([`AttachMode::Native`] or [`AttachMode::Generic`]).
    pub fn attach(&mut self, interface: &str, mode: AttachMode) -> Result<AttachMode, XdpError> {
        let tries: &[(AttachMode, XdpMode)] = match mode {
            AttachMode::Auto => &[
                (AttachMode::Native, XdpMode::Driver),
                (AttachMode::Generic, XdpMode::Skb),
            ],
            AttachMode::Native => &[(AttachMode::Native, XdpMode::Driver)],
            AttachMode::Generic => &[(AttachMode::Generic, XdpMode::Skb)],
        };
        let prog = program(&mut self.ebpf)?;
        let mut last = None;
        for &(used, xdp_mode) in tries {
            match prog.attach(interface, xdp_mode) {
                Ok(_link) => {
                    // The link lives in the program: dropping the program detaches it.
                    self.attached = Some((interface.to_owned(), used));
                    return Ok(used);
                }
                Err(ProgramError::UnknownInterface { .. }) => {
                    return Err(XdpError::InterfaceMissing(interface.to_owned()))
                }
                Err(e) => match errno_of(&e) {
                    Some(libc::EBUSY) | Some(libc::EEXIST) => {
                        return Err(XdpError::AlreadyAttached(interface.to_owned()))
                    }
                    Some(libc::EPERM) => {
                        return Err(XdpError::MissingCapabilities(vec![Capability::NetAdmin]))
                    }
                    _ => last = Some(e),
                },
            }
        }
        Err(XdpError::Attach {
            interface: interface.to_owned(),
            source: last.unwrap_or(ProgramError::NotAttached),
        })
    }

    /// Where the program is attached and how, if it is.
    pub fn attached(&self) -> Option<(&str, AttachMode)> {
        self.attached.as_ref().map(|(i, m)| (i.as_str(), *m))
    }

    /// Puts an AF_XDP socket into the `XSKMAP` at its rx queue index: from then on the
    /// program redirects that queue's DNS frames to it.
    pub fn register_socket(&mut self, queue: u32, socket: impl AsRawFd) -> Result<(), XdpError> {
        if queue >= MAX_QUEUES {
            return Err(XdpError::QueueOutOfRange(queue));
        }
        self.xsks.set(queue, socket.as_raw_fd(), 0)?;
        Ok(())
    }

    /// Removes the socket of `queue` from the `XSKMAP` (its frames are then lost).
    pub fn unregister_socket(&mut self, queue: u32) -> Result<(), XdpError> {
        self.xsks.unset(queue)?;
        Ok(())
    }

    /// The program's counters, summed over CPUs.
    pub fn counters(&self) -> Result<Counters, XdpError> {
        let per_cpu = self.counters.get(&0, 0)?;
        let mut total = Counters::default();
        for c in per_cpu.iter() {
            total.add(c);
        }
        Ok(total)
    }

    /// Runs the loaded program once on `frame` through BPF_PROG_TEST_RUN, without any
    /// interface: returns the XDP action (1 drop, 2 pass, 4 redirect). For tests and for
    /// checking a port set or mode on a sample frame.
    pub fn test_run(&mut self, frame: &[u8]) -> Result<u32, XdpError> {
        use aya::programs::{TestRun, TestRunOptions};
        let prog = program(&mut self.ebpf)?;
        let res = prog.test_run(TestRunOptions {
            data_in: Some(frame),
            ..Default::default()
        })?;
        Ok(res.return_value)
    }
}

fn program(ebpf: &mut Ebpf) -> Result<&mut Xdp, XdpError> {
    let prog = ebpf
        .program_mut(PROGRAM_NAME)
        .ok_or(ProgramError::NotLoaded)?;
    Ok(prog.try_into()?)
}

fn take_map(ebpf: &mut Ebpf, name: &'static str) -> Result<aya::maps::Map, XdpError> {
    ebpf.take_map(name)
        .ok_or(XdpError::Map(aya::maps::MapError::InvalidName {
            name: name.to_owned(),
        }))
}

/// The errno behind an attach failure, whichever path (bpf_link or netlink) failed.
fn errno_of(e: &ProgramError) -> Option<i32> {
    match e {
        ProgramError::SyscallError(s) => s.io_error.raw_os_error(),
        ProgramError::XdpError(aya::programs::xdp::XdpError::NetlinkError(n)) => n.raw_os_error(),
        _ => None,
    }
}

/// One bit per port: the layout the program reads (see `dns_sensor_common::port_bit`).
pub fn port_bitmap(ports: &[u16]) -> Vec<u64> {
    let mut words = vec![0u64; PORT_BITMAP_WORDS as usize];
    for &p in ports {
        let (word, mask) = port_bit(p);
        words[word as usize] |= mask;
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitmap_sets_exactly_the_ports() {
        let words = port_bitmap(&[53, 5353, 65535]);
        let set: Vec<u32> = (0..=65535u32)
            .filter(|&p| {
                let (w, m) = port_bit(p as u16);
                words[w as usize] & m != 0
            })
            .collect();
        assert_eq!(set, vec![53, 5353, 65535]);
    }

    #[test]
    fn cap_eff_is_parsed_from_proc_status() {
        let status = "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n";
        assert_eq!(parse_cap_eff(status), Some(0x1ff_ffff_ffff));
        assert_eq!(parse_cap_eff("Name:\tx\n"), None);
    }

    #[test]
    fn missing_interface_is_named() {
        match check_interface("dnss-nonexist0") {
            Err(XdpError::InterfaceMissing(n)) => assert_eq!(n, "dnss-nonexist0"),
            other => panic!("expected InterfaceMissing, got {other:?}"),
        }
        assert!(matches!(
            check_interface("bad\0name"),
            Err(XdpError::BadName(_))
        ));
    }

    #[test]
    fn loopback_is_up_with_one_queue_or_more() {
        let info = check_interface("lo").expect("lo exists and is up");
        assert_eq!(info.index, 1);
        assert!(info.rx_queues >= 1);
    }

    #[test]
    fn capability_error_names_each_missing_one() {
        let e = XdpError::MissingCapabilities(vec![Capability::NetRaw, Capability::Bpf]);
        let msg = e.to_string();
        assert!(msg.contains("CAP_NET_RAW, CAP_BPF"), "{msg}");
    }
}

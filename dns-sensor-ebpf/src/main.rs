//! The dns-sensor XDP program.
//!
//! For every frame: parse Ethernet (up to two VLAN tags), IPv4 (any header length) or
//! IPv6 (skipping hop-by-hop, routing, destination-options, fragment and AH headers),
//! then UDP or TCP. A frame whose source or destination port is in the port bitmap set by
//! user space (default {53}) goes to the AF_XDP socket of the receive queue it arrived on.
//! So do IPv4/IPv6 UDP non-first fragments: they carry no ports, and user space needs them
//! to reassemble large responses. Everything else is dropped in mirror mode (nothing else
//! on a mirror port has a consumer) or passed in inline mode.
//!
//! Non-first fragments: all UDP ones are redirected rather than only those of datagrams
//! whose first fragment matched. Tracking fragment ids in an LRU map would miss fragments
//! arriving before their first one and adds a shared map write per fragment; fragments
//! are rare on DNS-carrying links and user space drops orphans after its reassembly
//! timeout. `Counters::fragments` shows what this costs on a given link.
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::xdp_action::{XDP_DROP, XDP_PASS},
    macros::{map, xdp},
    maps::{Array, PerCpuArray, XskMap},
    programs::XdpContext,
};
use dns_sensor_common::{port_bit, Counters, MAX_QUEUES, MODE_MIRROR, PORT_BITMAP_WORDS};

/// Set by the loader (`EbpfLoader::set_global`); read-only data, so the verifier prunes
/// the branch of the mode not taken.
#[no_mangle]
static DNS_SENSOR_MODE: u8 = MODE_MIRROR;

#[map(name = "XSKS")]
static XSKS: XskMap = XskMap::with_max_entries(MAX_QUEUES, 0);

#[map(name = "COUNTERS")]
static COUNTERS: PerCpuArray<Counters> = PerCpuArray::with_max_entries(1, 0);

#[map(name = "PORTS")]
static PORTS: Array<u64> = Array::with_max_entries(PORT_BITMAP_WORDS, 0);

const ETH_HLEN: usize = 14;
const ETH_P_IPV4: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
/// Pre-standard QinQ outer tag, still seen on some switches.
const ETH_P_QINQ_OLD: u16 = 0x9100;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const IPV6_HOPOPTS: u8 = 0;
const IPV6_ROUTING: u8 = 43;
const IPV6_FRAGMENT: u8 = 44;
const IPV6_AH: u8 = 51;
const IPV6_DSTOPTS: u8 = 60;
/// IPv6 extension headers walked before giving up (RFC 8200's usual chain is shorter).
const MAX_IPV6_EXT: usize = 6;
/// Largest header offset followed: keeps every variable offset bounded for the verifier.
const MAX_OFFSET: usize = 1024;

enum Verdict {
    Dns,
    Fragment,
    NotDns,
    TooShort,
}

/// The frame ends before the header being read.
struct Short;

#[xdp]
pub fn dns_sensor(ctx: XdpContext) -> u32 {
    // SAFETY: a global in read-only data, written only by the loader before load.
    let mirror = unsafe { core::ptr::read_volatile(&DNS_SENSOR_MODE) } == MODE_MIRROR;
    let other = if mirror { XDP_DROP } else { XDP_PASS };
    let verdict = classify(&ctx).unwrap_or(Verdict::TooShort);
    let (action, outcome) = match verdict {
        Verdict::Dns | Verdict::Fragment => {
            // The fallback action when the queue has no socket: as for non-DNS.
            match XSKS.redirect(ctx.rx_queue_index(), other as u64) {
                Ok(action) => (action, Outcome::Redirected),
                Err(action) => (action, Outcome::RedirectFailed),
            }
        }
        Verdict::NotDns => (other, Outcome::NotDns),
        Verdict::TooShort => (other, Outcome::TooShort),
    };
    if let Some(c) = COUNTERS.get_ptr_mut(0) {
        // SAFETY: a per-CPU value: only this CPU touches it while the program runs.
        let c = unsafe { &mut *c };
        c.seen += 1;
        if let Verdict::Fragment = verdict {
            c.fragments += 1;
        }
        match outcome {
            Outcome::Redirected => c.redirected += 1,
            Outcome::RedirectFailed => c.redirect_failed += 1,
            Outcome::NotDns => c.not_dns += 1,
            Outcome::TooShort => c.too_short += 1,
        }
    }
    action
}

enum Outcome {
    Redirected,
    RedirectFailed,
    NotDns,
    TooShort,
}

#[inline(always)]
fn load_u8(ctx: &XdpContext, off: usize) -> Result<u8, Short> {
    let start = ctx.data();
    // Checks 2 bytes, not 1: LLVM turns `p + 1 > end` into `p >= end`, from which the
    // verifier derives no range when p has no constant offset. Every byte read here is
    // followed by more of its header in a valid frame, so this rejects nothing valid.
    if start + off + 2 > ctx.data_end() {
        return Err(Short);
    }
    // SAFETY: bounds checked just above against data_end.
    Ok(unsafe { *((start + off) as *const u8) })
}

#[inline(always)]
fn load_be16(ctx: &XdpContext, off: usize) -> Result<u16, Short> {
    let start = ctx.data();
    if start + off + 2 > ctx.data_end() {
        return Err(Short);
    }
    let p = (start + off) as *const u8;
    // SAFETY: bounds checked just above against data_end.
    Ok(unsafe { u16::from_be_bytes([*p, *p.add(1)]) })
}

#[inline(always)]
fn port_matches(port: u16) -> bool {
    let (word, mask) = port_bit(port);
    match PORTS.get(word) {
        Some(bits) => *bits & mask != 0,
        None => false,
    }
}

#[inline(always)]
fn classify(ctx: &XdpContext) -> Result<Verdict, Short> {
    let mut ethertype = load_be16(ctx, 12)?;
    let mut off = ETH_HLEN;
    // Two tags at most: 802.1ad outer + 802.1Q inner.
    for _ in 0..2 {
        if ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD || ethertype == ETH_P_QINQ_OLD {
            ethertype = load_be16(ctx, off + 2)?;
            off += 4;
        }
    }
    match ethertype {
        ETH_P_IPV4 => ipv4(ctx, off),
        ETH_P_IPV6 => ipv6(ctx, off),
        _ => Ok(Verdict::NotDns),
    }
}

#[inline(always)]
fn ipv4(ctx: &XdpContext, off: usize) -> Result<Verdict, Short> {
    let vihl = load_u8(ctx, off)?;
    if vihl >> 4 != 4 {
        return Ok(Verdict::NotDns);
    }
    let ihl = ((vihl & 0x0f) as usize) * 4;
    if ihl < 20 {
        return Ok(Verdict::NotDns);
    }
    let frag = load_be16(ctx, off + 6)?;
    let proto = load_u8(ctx, off + 9)?;
    if frag & 0x1fff != 0 {
        return Ok(if proto == IPPROTO_UDP {
            Verdict::Fragment
        } else {
            Verdict::NotDns
        });
    }
    l4(ctx, off + ihl, proto)
}

#[inline(always)]
fn ipv6(ctx: &XdpContext, off: usize) -> Result<Verdict, Short> {
    if load_u8(ctx, off)? >> 4 != 6 {
        return Ok(Verdict::NotDns);
    }
    let mut next = load_u8(ctx, off + 6)?;
    let mut off = off + 40;
    for _ in 0..MAX_IPV6_EXT {
        let len = match next {
            IPV6_HOPOPTS | IPV6_ROUTING | IPV6_DSTOPTS => {
                ((load_u8(ctx, off + 1)? as usize) + 1) * 8
            }
            IPV6_AH => ((load_u8(ctx, off + 1)? as usize) + 2) * 4,
            IPV6_FRAGMENT => {
                if load_be16(ctx, off + 2)? & 0xfff8 != 0 {
                    let inner = load_u8(ctx, off)?;
                    return Ok(if inner == IPPROTO_UDP {
                        Verdict::Fragment
                    } else {
                        Verdict::NotDns
                    });
                }
                8
            }
            _ => break,
        };
        next = load_u8(ctx, off)?;
        off += len;
        if off > MAX_OFFSET {
            return Ok(Verdict::NotDns);
        }
    }
    l4(ctx, off, next)
}

#[inline(always)]
fn l4(ctx: &XdpContext, off: usize, proto: u8) -> Result<Verdict, Short> {
    if proto != IPPROTO_UDP && proto != IPPROTO_TCP {
        return Ok(Verdict::NotDns);
    }
    let sport = load_be16(ctx, off)?;
    let dport = load_be16(ctx, off + 2)?;
    Ok(if port_matches(sport) || port_matches(dport) {
        Verdict::Dns
    } else {
        Verdict::NotDns
    })
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // SAFETY: the program has no panicking paths the verifier would accept anyway.
    unsafe { core::hint::unreachable_unchecked() }
}

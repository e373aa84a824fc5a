//! Types shared by the XDP program (`dns-sensor-ebpf`) and user space (`dns-sensor`):
//! map layouts and counters. `no_std`, plain `#[repr(C)]` data only.
#![no_std]

//! Machine health for heartbeats: CPU and memory use, interface throughput, and the number
//! of established TCP connections on the core's inbound ports.
//!
//! Rates are computed between two consecutive samples, so the first sample after start has
//! no throughput (`None`) rather than a made-up number.

use std::collections::BTreeSet;
use std::time::Instant;
use sysinfo::{Networks, System};

/// Samples machine health.
pub struct Sampler {
    sys: Option<System>,
    nets: Option<Networks>,
    last: Option<(Instant, u64, u64)>,
}

/// One sample.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// CPU use, percent.
    pub cpu_percent: Option<f32>,
    /// Memory use, percent.
    pub mem_percent: Option<f32>,
    /// Received bytes per second (all interfaces but loopback).
    pub rx_bps: Option<u64>,
    /// Sent bytes per second.
    pub tx_bps: Option<u64>,
}

impl Default for Sampler {
    fn default() -> Self {
        Self::new()
    }
}

impl Sampler {
    /// A sampler; the first [`Sampler::sample`] primes the rates.
    pub fn new() -> Sampler {
        let mut sys = System::new().ok();
        if let Some(s) = &mut sys {
            s.refresh_cpu_usage();
        }
        Sampler {
            sys,
            nets: Networks::new_with_refreshed_list().ok(),
            last: None,
        }
    }

    fn totals(&self) -> Option<(u64, u64)> {
        let nets = self.nets.as_ref()?;
        Some(
            nets.iter()
                .filter(|(name, _)| name.as_os_str() != "lo")
                .fold((0, 0), |(rx, tx), (_, d)| {
                    (rx + d.total_received(), tx + d.total_transmitted())
                }),
        )
    }

    /// Takes a sample.
    pub fn sample(&mut self) -> Sample {
        if let Some(n) = &mut self.nets {
            n.refresh(true);
        }
        let now = Instant::now();
        let rates = match (self.totals(), self.last) {
            (Some((rx, tx)), last) => {
                self.last = Some((now, rx, tx));
                last.and_then(|(t, prx, ptx)| {
                    let secs = now.duration_since(t).as_secs_f64();
                    (secs > 0.0).then(|| {
                        (
                            (rx.saturating_sub(prx) as f64 / secs) as u64,
                            (tx.saturating_sub(ptx) as f64 / secs) as u64,
                        )
                    })
                })
            }
            (None, _) => None,
        };
        let (cpu, mem) = match &mut self.sys {
            Some(sys) => {
                sys.refresh_cpu_usage();
                sys.refresh_memory();
                let total = sys.total_memory();
                (
                    Some(sys.global_cpu_usage()),
                    (total > 0).then(|| (sys.used_memory() as f64 * 100.0 / total as f64) as f32),
                )
            }
            None => (None, None),
        };
        Sample {
            cpu_percent: cpu,
            mem_percent: mem,
            rx_bps: rates.map(|r| r.0),
            tx_bps: rates.map(|r| r.1),
        }
    }
}

/// Counts established TCP connections whose local port is in `ports` (IPv4 and IPv6).
pub fn established_on(ports: &BTreeSet<u16>) -> Option<u64> {
    let mut n = 0;
    let mut read_any = false;
    for f in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = std::fs::read_to_string(f) {
            read_any = true;
            n += count_established(&text, ports);
        }
    }
    read_any.then_some(n)
}

/// Parses the `/proc/net/tcp` format.
pub fn count_established(text: &str, ports: &BTreeSet<u16>) -> u64 {
    text.lines()
        .skip(1)
        .filter(|l| {
            let mut f = l.split_whitespace();
            let local = f.nth(1).unwrap_or("");
            let state = f.nth(1).unwrap_or("");
            let port = local
                .rsplit_once(':')
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            state == "01" && port.is_some_and(|p| ports.contains(&p))
        })
        .count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn established_sockets_on_inbound_ports_are_counted() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:4E21 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 0100007F:4E21 0100007F:D1B2 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 20 4 30 10 -1
   2: 0100007F:D1B2 0100007F:4E21 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0 20 4 30 10 -1
";
        let ports: BTreeSet<u16> = [20001].into();
        assert_eq!(count_established(text, &ports), 1);
        let mut s = Sampler::new();
        let first = s.sample();
        assert_eq!(first.rx_bps, None);
        let second = s.sample();
        assert!(second.rx_bps.is_some());
        assert!(second.mem_percent.is_some_and(|m| m > 0.0 && m <= 100.0));
    }
}

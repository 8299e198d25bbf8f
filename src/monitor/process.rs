//! This process's CPU time, resident memory and open file descriptors, from
//! /proc (Linux); zeros elsewhere.

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProcessSample {
    /// User + system CPU seconds since start.
    pub cpu_seconds: f64,
    pub rss_bytes: u64,
    pub open_fds: u64,
    pub threads: u64,
}

pub fn sample() -> ProcessSample {
    #[cfg(target_os = "linux")]
    {
        let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok().flatten().unwrap_or(100) as f64;
        let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE).ok().flatten().unwrap_or(4096) as u64;
        let mut s = ProcessSample::default();
        if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
            // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
            if let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) {
                let f: Vec<&str> = rest.split_whitespace().collect();
                let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
                s.cpu_seconds = (num(11) + num(12)) as f64 / ticks;
                s.threads = num(17);
                s.rss_bytes = num(21) * page;
            }
        }
        // statm's second field is resident pages; qemu-user emulates stat's rss as 0.
        if let Some(res) = std::fs::read_to_string("/proc/self/statm")
            .ok()
            .and_then(|m| m.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()))
            .filter(|&r| r > 0)
        {
            s.rss_bytes = res * page;
        }
        if s.threads == 0 {
            s.threads = std::fs::read_dir("/proc/self/task").map(|d| d.count() as u64).unwrap_or(0);
        }
        s.open_fds = std::fs::read_dir("/proc/self/fd").map(|d| d.count() as u64).unwrap_or(0);
        s
    }
    #[cfg(not(target_os = "linux"))]
    ProcessSample::default()
}

/// The most resident memory this process has had (VmHWM), 0 where unknown.
pub fn peak_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

pub fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let a = sample();
        let v: Vec<u64> = (0..2_000_000).collect();
        let mut x = 0u64;
        for _ in 0..20 {
            x = x.wrapping_add(v.iter().sum::<u64>());
        }
        std::hint::black_box(x);
        let b = sample();
        assert!(b.rss_bytes > 1 << 20, "rss {}", b.rss_bytes);
        assert!(b.open_fds >= 3);
        assert!(b.threads >= 1);
        assert!(b.cpu_seconds >= a.cpu_seconds);
    }
}

//! The machine a report's figures came from: CPU model, cores, whether the
//! CPU has VNNI (INT8 dot products: the INT8 and overlap gains depend on
//! it), and the board profile built in. Printed above every bench report
//! and written into its JSON, as figures from machines of one kind differ
//! by CPU.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Machine {
    /// As /proc/cpuinfo names it ("model name", or an ARM board's
    /// "Hardware"/"CPU part"), or why it is unknown.
    pub cpu: String,
    pub cores: usize,
    /// AVX-512 VNNI or AVX-VNNI among the CPU's flags.
    pub vnni: bool,
    pub board: &'static str,
}

impl Machine {
    pub fn here() -> Machine {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let (cpu, vnni) = match std::fs::read_to_string("/proc/cpuinfo") {
            Ok(text) => cpu_of(&text),
            Err(e) => (format!("unknown ({}: /proc/cpuinfo: {e})", std::env::consts::ARCH), false),
        };
        Machine { cpu, cores, vnni, board: faceflow::board::NAME }
    }
}

impl fmt::Display for Machine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}, {} cores, {}, board {}",
            self.cpu,
            self.cores,
            if self.vnni { "VNNI" } else { "no VNNI" },
            self.board
        )
    }
}

/// The CPU's name and whether it has VNNI, from /proc/cpuinfo's text
/// (its first processor's block: they are alike on these machines).
fn cpu_of(cpuinfo: &str) -> (String, bool) {
    let field = |key: &str| {
        cpuinfo.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == key && !v.trim().is_empty()).then(|| v.trim().to_string())
        })
    };
    let name = field("model name")
        .or_else(|| field("Hardware"))
        .or_else(|| Some(format!("{} CPU part {}", field("CPU implementer")?, field("CPU part")?)))
        .unwrap_or_else(|| format!("unknown ({}: no model name in /proc/cpuinfo)", std::env::consts::ARCH));
    let vnni = field("flags").is_some_and(|f| f.split_whitespace().any(|x| x == "avx512_vnni" || x == "avx_vnni"));
    (name, vnni)
}

/// `value` with the machine in it: beside each row of a list of rows, or
/// in a report that is one object (JSON readers that ignore unknown keys
/// read it as before).
pub fn stamped(mut value: serde_json::Value, machine: &Machine) -> serde_json::Value {
    let m = serde_json::to_value(machine).expect("a Machine serializes");
    match &mut value {
        serde_json::Value::Array(rows) => {
            for row in rows.iter_mut() {
                if let serde_json::Value::Object(o) = row {
                    o.insert("machine".into(), m.clone());
                }
            }
        }
        serde_json::Value::Object(o) => {
            o.insert("machine".into(), m);
        }
        _ => {}
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPYC: &str = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9R14\n\
                        flags\t\t: fpu sse avx512f avx512_vnni avx512_bf16\n\nprocessor\t: 1\nmodel name\t: AMD EPYC 9R14\n";
    const XEON: &str = "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Processor\nflags\t\t: fpu sse avx2 avx512f\n";
    const ARM: &str =
        "processor\t: 0\nBogoMIPS\t: 62.50\nFeatures\t: fp asimd\nCPU implementer\t: 0x41\nCPU part\t: 0xd42\n";

    #[test]
    fn the_cpu_is_named_and_vnni_read_from_its_flags() {
        assert_eq!(cpu_of(EPYC), ("AMD EPYC 9R14".to_string(), true));
        assert_eq!(cpu_of(XEON), ("Intel(R) Xeon(R) Processor".to_string(), false));
        assert_eq!(cpu_of(ARM), ("0x41 CPU part 0xd42".to_string(), false));
        assert!(cpu_of("").0.starts_with("unknown ("), "{}", cpu_of("").0);
    }

    #[test]
    fn reports_carry_the_machine_beside_each_row_or_in_the_object() {
        let m = Machine { cpu: "c".into(), cores: 2, vnni: true, board: "x86-cpu" };
        let rows = stamped(serde_json::json!([{"fps": 1.0}, {"fps": 2.0}]), &m);
        assert_eq!(rows[1]["fps"], 2.0);
        assert_eq!(rows[0]["machine"]["cpu"], "c");
        assert_eq!(rows[1]["machine"]["vnni"], true);
        let one = stamped(serde_json::json!({"rows": []}), &m);
        assert_eq!(one["machine"]["cores"], 2);
    }
}

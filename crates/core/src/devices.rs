//! Device classes as capabilities: what a worker can run, which queue a job
//! of a class waits on, and which class a request resolves to.
//!
//! A worker serves exactly one class (`cpu` or `cuda`, its `trainer.device`)
//! and advertises its [`Capability`]s in the workers table. A job that needs a
//! device records its class in `jobs.device`, is woken on that class's queue
//! ([`queue_for`]) and is claimed only by a worker of that class, so a CUDA
//! job never runs on a CPU worker and a GPU worker never spends its GPU on a
//! CPU job. Requests are checked against the live workers, not against the
//! replica that received the call ([`resolve`]).

use std::path::Path;
use std::time::Duration;

use sea_orm::{DeriveActiveEnum, EnumIter};
use serde::{Deserialize, Serialize};

/// A device class: what a worker serves and what a job needs (the
/// `jobs.device` column, typed).
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    EnumIter,
    DeriveActiveEnum,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
#[sea_orm(rs_type = "String", db_type = "Text")]
pub enum DeviceClass {
    /// Every build can run it.
    #[sea_orm(string_value = "cpu")]
    Cpu,
    /// A `--features cuda` build on an NVIDIA GPU.
    #[sea_orm(string_value = "cuda")]
    Cuda,
}

impl DeviceClass {
    /// Every class, in routing order.
    pub const ALL: [DeviceClass; 2] = [DeviceClass::Cpu, DeviceClass::Cuda];

    /// The class's name, as requests, queues and the database spell it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Cuda => "cuda",
        }
    }

    /// Parses a class name (`auto` is a request, not a class).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl std::fmt::Display for DeviceClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The CPU class: every build can run it.
pub const CPU: &str = DeviceClass::Cpu.as_str();
/// The CUDA class: a `--features cuda` build on an NVIDIA GPU.
pub const CUDA: &str = DeviceClass::Cuda.as_str();
/// Every device class, in routing order.
pub const CLASSES: [&str; 2] = [CPU, CUDA];
/// Requested device meaning "a GPU when one is live, else the CPU".
pub const AUTO: &str = "auto";

/// One device a worker can run jobs on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capability {
    /// The device itself: `cpu`, `cuda:0`, ...
    pub device: String,
    /// Its class: `cpu` or `cuda`.
    pub class: String,
    /// Model name (CPU model, GPU name), when known.
    pub name: Option<String>,
    /// Memory available to jobs on it (RAM for the CPU, GPU memory for CUDA), when known.
    pub memory_bytes: Option<u64>,
}

/// The queue jobs of `class` are woken on: the base queue for `cpu` (the
/// queue every deployment has), `{base}.{class}` for the others.
pub fn queue_for(base: &str, class: DeviceClass) -> String {
    if class == DeviceClass::Cpu {
        base.to_string()
    } else {
        format!("{base}.{class}")
    }
}

/// Whether `class` is a known device class.
pub fn is_class(class: &str) -> bool {
    CLASSES.contains(&class)
}

/// What this machine offers for `class`: the CPU with its RAM, or CUDA
/// device 0 (the one a CUDA worker trains on) with its name and memory as
/// the NVIDIA driver reports them.
pub fn probe(class: &str) -> Vec<Capability> {
    if class == CUDA {
        let (name, memory_bytes) = nvidia_gpu0();
        vec![Capability {
            device: "cuda:0".into(),
            class: CUDA.into(),
            name: name.or_else(|| Some("CUDA device 0".into())),
            memory_bytes,
        }]
    } else {
        vec![Capability {
            device: CPU.into(),
            class: CPU.into(),
            name: cpu_model(),
            memory_bytes: mem_total(),
        }]
    }
}

fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == "model name").then(|| v.trim().to_string())
    })
}

fn mem_total() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    info.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
}

/// GPU 0's name and total memory: `nvidia-smi` when it is installed (it knows
/// the memory), else the driver's `/proc` entry (name only).
fn nvidia_gpu0() -> (Option<String>, Option<u64>) {
    if let Some(found) = nvidia_smi_gpu0() {
        return found;
    }
    let name = std::fs::read_dir("/proc/driver/nvidia/gpus")
        .ok()
        .and_then(|dir| dir.filter_map(Result::ok).next())
        .and_then(|gpu| std::fs::read_to_string(gpu.path().join("information")).ok())
        .and_then(|info| {
            info.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == "Model").then(|| v.trim().to_string())
            })
        });
    (name, None)
}

fn nvidia_smi_gpu0() -> Option<(Option<String>, Option<u64>)> {
    let smi = ["/usr/bin/nvidia-smi", "/usr/local/bin/nvidia-smi"]
        .into_iter()
        .find(|p| Path::new(p).exists())?;
    let mut child = std::process::Command::new(smi)
        .args([
            "--query-gpu=name,memory.total",
            "--format=csv,noheader,nounits",
            "--id=0",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    // A wedged driver must not hang a worker's start.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
    let mut out = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut()?, &mut out).ok()?;
    Some(parse_nvidia_smi(&out))
}

/// Parses one `name, memory.total` line (MiB) of `nvidia-smi --format=csv,noheader,nounits`.
pub fn parse_nvidia_smi(line: &str) -> (Option<String>, Option<u64>) {
    let line = line.lines().next().unwrap_or("");
    let (name, mem) = line.rsplit_once(',').unwrap_or((line, ""));
    let name = Some(name.trim().to_string()).filter(|n| !n.is_empty());
    let mem = mem.trim().parse::<u64>().ok().map(|mib| mib * 1024 * 1024);
    (name, mem)
}

/// The live workers of one class, as [`resolve`] and status pages see them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pool {
    /// Live workers per class (classes without one are absent or 0).
    pub live: Vec<(String, usize)>,
    /// Classes accepted with no live worker: the deployment starts their
    /// workers on demand (`trainer.on_demand_devices`).
    pub on_demand: Vec<String>,
}

impl Pool {
    /// Live workers of `class`.
    pub fn live_count(&self, class: &str) -> usize {
        self.live
            .iter()
            .filter(|(c, _)| c == class)
            .map(|(_, n)| *n)
            .sum()
    }

    /// Whether jobs of `class` will be run: a live worker has it, or the
    /// deployment starts one on demand.
    pub fn serves(&self, class: &str) -> bool {
        self.live_count(class) > 0 || self.on_demand.iter().any(|c| c == class)
    }

    fn describe_live(&self) -> String {
        let live: Vec<String> = self
            .live
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(c, n)| format!("{n} {c}"))
            .collect();
        if live.is_empty() {
            "no live workers".into()
        } else {
            format!("live workers: {}", live.join(", "))
        }
    }
}

/// Why a requested device cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    /// Not a device name at all (a 400).
    #[error("unknown device {0:?}; devices are cpu, cuda and auto")]
    Unknown(String),
    /// A real class that no live worker has and none is started on demand (a 409).
    #[error(
        "no live worker has device {class} ({live}); start one (a {class} trainer) or ask for another device"
    )]
    NotServed {
        /// The requested class.
        class: String,
        /// The live workers, in words.
        live: String,
    },
}

/// The class a request for `requested` runs on: `cpu`/`cuda` when served,
/// `auto` as `cuda` when a CUDA worker is live, else `cpu` when served, else
/// `cuda` when started on demand.
pub fn resolve(requested: &str, pool: &Pool) -> Result<DeviceClass, DeviceError> {
    let requested = requested.trim();
    if requested == AUTO {
        let pick = if pool.live_count(CUDA) > 0 {
            DeviceClass::Cuda
        } else if pool.serves(CPU) {
            DeviceClass::Cpu
        } else if pool.serves(CUDA) {
            DeviceClass::Cuda
        } else {
            return Err(DeviceError::NotServed {
                class: CPU.into(),
                live: pool.describe_live(),
            });
        };
        return Ok(pick);
    }
    let Some(class) = DeviceClass::parse(requested) else {
        return Err(DeviceError::Unknown(requested.to_string()));
    };
    if pool.serves(requested) {
        Ok(class)
    } else {
        Err(DeviceError::NotServed {
            class: requested.to_string(),
            live: pool.describe_live(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(live: &[(&str, usize)], on_demand: &[&str]) -> Pool {
        Pool {
            live: live.iter().map(|(c, n)| (c.to_string(), *n)).collect(),
            on_demand: on_demand.iter().map(|c| c.to_string()).collect(),
        }
    }

    #[test]
    fn queues_per_class() {
        assert_eq!(
            queue_for("jobs.training", DeviceClass::Cpu),
            "jobs.training"
        );
        assert_eq!(
            queue_for("jobs.training", DeviceClass::Cuda),
            "jobs.training.cuda"
        );
    }

    #[test]
    fn auto_prefers_a_live_gpu() {
        let p = pool(&[("cpu", 2), ("cuda", 1)], &["cpu"]);
        assert_eq!(resolve("auto", &p).unwrap(), DeviceClass::Cuda);
        assert_eq!(resolve("cpu", &p).unwrap(), DeviceClass::Cpu);
        assert_eq!(resolve("cuda", &p).unwrap(), DeviceClass::Cuda);
    }

    #[test]
    fn auto_falls_back_to_the_cpu_and_to_on_demand_gpus() {
        assert_eq!(
            resolve("auto", &pool(&[("cpu", 1)], &[])).unwrap(),
            DeviceClass::Cpu
        );
        // A GPU started on demand is not "live": auto stays on the CPU pool.
        assert_eq!(
            resolve("auto", &pool(&[], &["cpu", "cuda"])).unwrap(),
            DeviceClass::Cpu
        );
        assert_eq!(
            resolve("auto", &pool(&[], &["cuda"])).unwrap(),
            DeviceClass::Cuda
        );
        assert!(matches!(
            resolve("auto", &pool(&[], &[])),
            Err(DeviceError::NotServed { .. })
        ));
    }

    #[test]
    fn a_class_nobody_serves_is_refused_with_the_live_pool() {
        let err = resolve("cuda", &pool(&[("cpu", 3)], &["cpu"])).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, DeviceError::NotServed { .. }));
        assert!(msg.contains("no live worker has device cuda"), "{msg}");
        assert!(msg.contains("3 cpu"), "{msg}");
        // On demand: accepted, it waits for the deployment to start one.
        assert_eq!(
            resolve("cuda", &pool(&[("cpu", 3)], &["cpu", "cuda"])).unwrap(),
            DeviceClass::Cuda
        );
        assert!(matches!(
            resolve("tpu", &pool(&[("cpu", 1)], &["cpu"])),
            Err(DeviceError::Unknown(_))
        ));
        assert!(matches!(
            resolve("cuda:0", &pool(&[("cuda", 1)], &[])),
            Err(DeviceError::Unknown(_))
        ));
    }

    #[test]
    fn nvidia_smi_lines_parse() {
        assert_eq!(
            parse_nvidia_smi("NVIDIA H200, 143771\n"),
            (Some("NVIDIA H200".into()), Some(143771 * 1024 * 1024))
        );
        assert_eq!(parse_nvidia_smi(""), (None, None));
        assert_eq!(
            parse_nvidia_smi("Some, GPU, [N/A]"),
            (Some("Some, GPU".into()), None)
        );
    }

    #[test]
    fn the_cpu_probe_names_memory() {
        let caps = probe(CPU);
        assert_eq!(caps.len(), 1);
        assert_eq!(caps[0].class, "cpu");
        if cfg!(target_os = "linux") {
            assert!(caps[0].memory_bytes.unwrap() > 0);
        }
        let gpu = probe(CUDA);
        assert_eq!(gpu[0].device, "cuda:0");
    }
}

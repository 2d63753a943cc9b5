//! Where a tensor lives.

use std::fmt;

/// The CPU, or a CUDA GPU by ordinal. The CUDA side exists only with the `cuda` cargo feature;
/// without it, asking for `Cuda(_)` is an error at the op that asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Device {
    #[default]
    Cpu,
    Cuda(usize),
}

impl Device {
    pub fn is_cuda(self) -> bool {
        matches!(self, Device::Cuda(_))
    }

    /// Ok when tensors can be made here: always for the CPU; for a GPU, when this build has
    /// the `cuda` feature and the driver opens that device. The error says which is missing.
    pub fn check_available(self) -> crate::Result<()> {
        match self {
            Device::Cpu => Ok(()),
            #[cfg(feature = "cuda")]
            Device::Cuda(i) => crate::cuda::stream(i)
                .map(|_| ())
                .map_err(|e| match e.kind {
                    crate::ErrorKind::Cuda(m) => crate::Error::msg("device", m),
                    _ => e,
                }),
            #[cfg(not(feature = "cuda"))]
            Device::Cuda(_) => Err(crate::Error::msg(
                "device",
                format!("{self}: this build has no CUDA support: rebuild with `--features cuda`"),
            )),
        }
    }

    /// The device for reports: "cpu (2 threads)", or "cuda:0 (NVIDIA H200)" with the name the
    /// driver gives (just "cuda:0" when it cannot be read).
    pub fn describe(self) -> String {
        match self {
            Device::Cpu => format!("cpu ({} threads)", rayon::current_num_threads()),
            #[cfg(feature = "cuda")]
            Device::Cuda(i) => match crate::cuda::device_name(i) {
                Ok(name) => format!("{self} ({name})"),
                Err(_) => self.to_string(),
            },
            #[cfg(not(feature = "cuda"))]
            Device::Cuda(_) => self.to_string(),
        }
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => write!(f, "cpu"),
            Device::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

impl std::str::FromStr for Device {
    type Err = String;
    /// Parses "cpu", "cuda" (ordinal 0) or "cuda:N".
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Device::Cuda)
                .ok_or_else(|| format!("unknown device '{s}': expected cpu, cuda or cuda:N")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_names_the_device() {
        assert_eq!(
            Device::Cpu.describe(),
            format!("cpu ({} threads)", rayon::current_num_threads())
        );
        // No machine has a GPU 99: its name cannot be read, which leaves the ordinal alone
        // (and no panic, with or without a CUDA driver).
        assert_eq!(Device::Cuda(99).describe(), "cuda:99");
    }
}

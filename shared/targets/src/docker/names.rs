//! Names and ports of a deploy's containers: one pair of blue/green ports per replica,
//! and the container names a switch creates and retires.

use super::Spec;
use ferry_shared::config::ContainerConfig;

impl Spec<'_> {
    /// The blue/green ports of this replica: its pair in `container.ports`.
    pub(super) fn slot_ports(&self) -> &[u16] {
        let i = self.replica as usize * 2;
        self.container
            .ports
            .get(i..i + 2)
            .unwrap_or(&self.container.ports)
    }

    /// The slot the new container takes: the one the old container does not hold.
    pub(super) fn free_port(&self, old_port: Option<u16>) -> u16 {
        let ports = self.slot_ports();
        ports
            .iter()
            .copied()
            .find(|p| Some(*p) != old_port)
            .unwrap_or(ports[0])
    }

    /// `(the new container, the retired one)` of this replica.
    pub(super) fn names(&self) -> (String, String) {
        let base = format!("ferry-{}-{}", self.project, self.environment);
        let replica = match self.replica {
            0 => String::new(),
            r => format!("-r{r}"),
        };
        (
            format!(
                "{base}-{}{replica}",
                &self.run_id.simple().to_string()[..12]
            ),
            format!("{base}-retired{replica}"),
        )
    }

    /// How this replica is named in events: the host, with `/r<i>` past the first.
    pub(super) fn host_label(&self, host: &str) -> String {
        if self.replicas > 1 {
            format!("{host}/r{}", self.replica)
        } else {
            host.to_owned()
        }
    }
}

/// The port the app listens on inside its container for slot `port`: on the host's
/// network the slot itself; on another network `container_port`, which Docker publishes
/// on the slot.
pub(super) fn inside_port(c: &ContainerConfig, port: u16) -> u16 {
    match c.network.as_str() {
        "host" => port,
        _ => c.container_port.unwrap_or(port),
    }
}

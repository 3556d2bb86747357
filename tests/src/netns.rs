//! A network namespace joined to this machine by a veth pair, so a test
//! can cut one process off from one server (as root): the process runs
//! inside (`ip netns exec`), each server listens on an address of its own
//! on the host side, and a cut routes that address, inside the namespace,
//! through a gateway nobody answers for — packets vanish, no reset, as in
//! a real partition. Removed on drop.

use std::ffi::OsString;
use std::process::Command;

/// The namespace and its link.
pub struct Netns {
    name: String,
    veth: String,
    net: String,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {args:?}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

impl Netns {
    /// A namespace on `net` (two octets, e.g. `"10.83"`): the host is
    /// `<net>.0.1`, the namespace `<net>.0.2`; `None` when not root.
    pub fn create(net: &str) -> Option<Self> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return None;
        }
        let id = std::process::id() % 100_000;
        let ns = Self {
            name: format!("sluice-test-{id}"),
            veth: format!("sltest{id}"),
            net: net.to_owned(),
        };
        let (host, inner) = (ns.host(), ns.address());
        let peer = format!("{}w", ns.veth);
        let steps: [&[&str]; 8] = [
            &["netns", "add", &ns.name],
            &[
                "link", "add", &ns.veth, "type", "veth", "peer", "name", &peer,
            ],
            &["link", "set", &peer, "netns", &ns.name],
            &["addr", "add", &format!("{host}/24"), "dev", &ns.veth],
            &["link", "set", &ns.veth, "up"],
            &[
                "-n",
                &ns.name,
                "addr",
                "add",
                &format!("{inner}/24"),
                "dev",
                &peer,
            ],
            &["-n", &ns.name, "link", "set", &peer, "up"],
            &["-n", &ns.name, "link", "set", "lo", "up"],
        ];
        for step in steps {
            ip(step).expect("setting up the network namespace");
        }
        ip(&[
            "-n",
            &ns.name,
            "route",
            "add",
            &format!("{net}.1.0/24"),
            "via",
            &host,
        ])
        .expect("routing the servers' addresses");
        Some(ns)
    }

    /// The host's address on the link.
    pub fn host(&self) -> String {
        format!("{}.0.1", self.net)
    }

    /// The namespace's address.
    pub fn address(&self) -> String {
        format!("{}.0.2", self.net)
    }

    /// Gives the host one more address (`<net>.1.<n>`), for a server the
    /// namespace can be cut off from alone.
    pub fn server_address(&self, n: u8) -> String {
        let address = format!("{}.1.{n}", self.net);
        ip(&["addr", "add", &format!("{address}/32"), "dev", &self.veth])
            .expect("adding a server address");
        address
    }

    /// What runs a command inside the namespace (it execs the command).
    pub fn wrapper(&self) -> Vec<OsString> {
        ["ip", "netns", "exec", &self.name]
            .iter()
            .map(OsString::from)
            .collect()
    }

    /// Cuts the namespace off from `address`: its packets go to a gateway
    /// that does not exist.
    pub fn cut(&self, address: &str) {
        let nowhere = format!("{}.0.99", self.net);
        ip(&[
            "-n",
            &self.name,
            "route",
            "add",
            &format!("{address}/32"),
            "via",
            &nowhere,
        ])
        .expect("cutting");
    }

    /// Undoes [`Netns::cut`].
    pub fn heal(&self, address: &str) {
        ip(&["-n", &self.name, "route", "del", &format!("{address}/32")]).expect("healing");
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["link", "del", &self.veth]);
        let _ = ip(&["netns", "del", &self.name]);
    }
}

//! Simulated hosts for the control-plane scale bench (`cargo xtask bench`):
//! registers N hosts, each with its own lease, its VTEP key and M MAC keys,
//! exactly as `overlayctl agent` writes them; or revokes every tenth of the
//! leases it granted (hosts vanishing).
//!
//!   etcdgen ENDPOINT register N M LEASES_FILE   # host i: VNI 100 + i/100, VTEP 198.51.100.(1 + i%100)
//!   etcdgen ENDPOINT vanish LEASES_FILE         # revokes the leases of hosts 0, 10, 20, ...
//!
//! Addresses stay in 198.51.100.0/24 (documentation range): the 100 hosts
//! of one VNI have distinct addresses, the VNIs reuse them. For the agent
//! each is a (network, VTEP) pair of its own, with its own lease.

use etcd_client::{Client, PutOptions, Txn, TxnOp};

fn vtep(i: u32) -> std::net::Ipv4Addr {
    std::net::Ipv4Addr::new(198, 51, 100, 1 + (i % 100) as u8)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "etcdgen ENDPOINT (register N M LEASES_FILE | vanish LEASES_FILE)";
    let endpoint = args.get(1).ok_or(usage)?;
    let mut c = Client::connect([endpoint.as_str()], None).await?;
    match args.get(2).map(String::as_str) {
        Some("register") => {
            let n: u32 = args.get(3).ok_or(usage)?.parse()?;
            let m: u32 = args.get(4).ok_or(usage)?.parse()?;
            let mut leases = Vec::new();
            for i in 0..n {
                let lease = c.lease_grant(120, None).await?.id();
                leases.push(lease.to_string());
                let (vni, addr) = (100 + i / 100, vtep(i));
                let opts = || Some(PutOptions::new().with_lease(lease));
                let mut ops = vec![TxnOp::put(
                    format!("/overlay/v1/vni/{vni}/vtep/{addr}"),
                    format!(r#"{{"host":"sim{i}","address":"{addr}","port":4789}}"#),
                    opts(),
                )];
                for j in 0..m {
                    let mac = format!(
                        "0a:{:02x}:{:02x}:{:02x}:00:{:02x}",
                        i >> 16 & 0xff,
                        i >> 8 & 0xff,
                        i & 0xff,
                        j
                    );
                    ops.push(TxnOp::put(
                        format!("/overlay/v1/vni/{vni}/mac/{mac}"),
                        format!(r#"{{"vtep":"{addr}","ips":[]}}"#),
                        opts(),
                    ));
                }
                c.txn(Txn::new().and_then(ops)).await?;
            }
            std::fs::write(args.get(5).ok_or(usage)?, leases.join("\n"))?;
        }
        Some("vanish") => {
            let leases = std::fs::read_to_string(args.get(3).ok_or(usage)?)?;
            for l in leases.lines().step_by(10) {
                c.lease_revoke(l.parse()?).await?;
            }
        }
        _ => return Err(usage.into()),
    }
    Ok(())
}

//! Ferry's benchmarks. Prints one line per figure: `bench: <name> = <value> <unit>`.
//!
//! Bus: hop latency (publish with confirm → handler → ack) and throughput through
//! Ferry's bus, and the same for a bare lapin loop on an identical quorum queue in
//! the same run, so the bus's own cost is visible.

mod build;
mod bus;
mod hooks;
mod pulls;
mod rollback;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = ferry_testkit::amqp_url();
    let hops: usize = std::env::var("BENCH_HOPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    let msgs: usize = std::env::var("BENCH_MSGS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);

    // BENCH_ONLY=bus,hooks,build,pulls,rollback runs a subset (default: everything).
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let wanted = |part: &str| only.is_empty() || only.split(',').any(|p| p == part);
    if wanted("bus") {
        let ferry = bus::ferry(&url, hops, msgs).await?;
        let lapin = bus::bare_lapin(&url, hops, msgs).await?;
        for (prefix, r) in [("bus", &ferry), ("lapin", &lapin)] {
            println!("bench: {prefix}_hop_p50_ms = {:.3} ms", r.p50_ms);
            println!("bench: {prefix}_hop_p99_ms = {:.3} ms", r.p99_ms);
        }
        println!("bench: bus_msgs_per_s = {:.0} msg/s", ferry.msgs_per_s);
        println!("bench: lapin_msgs_per_s = {:.0} msg/s", lapin.msgs_per_s);
    }

    if wanted("hooks") {
        let connections = env_or("BENCH_HOOK_CONNECTIONS", 32);
        let hooks = hooks::accept(&url, connections, env_or("BENCH_HOOKS", 20_000)).await?;
        println!("bench: hook_accept_per_s = {:.0} hooks/s", hooks.per_s);
        println!("bench: hook_accept_p50_ms = {:.2} ms", hooks.p50_ms);
        println!("bench: hook_accept_p99_ms = {:.2} ms", hooks.p99_ms);
    }

    if wanted("build") {
        let build = build::build_and_push(&url).await?;
        println!("bench: build_cold_s = {:.2} s", build.cold_s);
        println!("bench: build_warm_s = {:.2} s", build.warm_s);
        println!(
            "bench: build_warm_over_cold = {:.2}",
            build.warm_s / build.cold_s
        );
        println!("bench: push_s = {:.2} s", build.push_s);
    }

    if wanted("pulls") {
        let p = pulls::pulls().await?;
        println!("bench: pull_parallel4_s = {:.2} s", p.puller_parallel4_s);
        println!("bench: cli_parallel4_s = {:.2} s", p.cli_parallel4_s);
        println!(
            "bench: pull_parallel4_over_cli_parallel4 = {:.2}",
            p.puller_parallel4_s / p.cli_parallel4_s
        );
        println!("bench: pull_linked_single_s = {:.2} s", p.linked_single_s);
        println!(
            "bench: pull_linked_parallel4_over_single = {:.2}",
            p.linked_parallel4_s / p.linked_single_s
        );
        println!(
            "bench: pull_linked_sequential4_over_single = {:.2}",
            p.linked_sequential4_s / p.linked_single_s
        );
    }
    if wanted("rollback") {
        let r = rollback::rollback().await?;
        println!("bench: rollback_s = {:.2} s", r.rollback_s);
        println!("bench: rollback_hosts = {}", r.hosts);
    }
    Ok(())
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

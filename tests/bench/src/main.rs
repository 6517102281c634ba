//! Ferry's benchmarks. Prints one line per figure: `bench: <name> = <value> <unit>`.
//!
//! Bus: hop latency (publish with confirm → handler → ack) and throughput through
//! Ferry's bus, and the same for a bare lapin loop on an identical quorum queue in
//! the same run, so the bus's own cost is visible.

mod build;
mod builds;
mod bus;
mod dashboard;
mod e2e;
mod hooks;
mod ledger;
mod pulls;
mod rollback;
mod shell_job;
mod shop;
mod switching;

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

    // BENCH_ONLY=bus,cluster_bus,ledger,dashboard,hooks,build,builds,pulls,rollback,switching,e2e,shop,images runs a subset (default: everything).
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let wanted = |part: &str| only.is_empty() || only.split(',').any(|p| p == part);
    if wanted("bus") {
        let ferry = bus::ferry(&url, &[], hops, msgs).await?;
        let lapin = bus::bare_lapin(&url, hops, msgs).await?;
        for (prefix, r) in [("bus", &ferry), ("lapin", &lapin)] {
            println!("bench: {prefix}_hop_p50_ms = {:.3} ms", r.p50_ms);
            println!("bench: {prefix}_hop_p99_ms = {:.3} ms", r.p99_ms);
        }
        println!("bench: bus_msgs_per_s = {:.0} msg/s", ferry.msgs_per_s);
        println!("bench: lapin_msgs_per_s = {:.0} msg/s", lapin.msgs_per_s);
    }

    // The same on the harness's three-node cluster (quorum queues replicated to all three):
    // Ferry with `broker.addresses` (its connections land on any node), lapin on node 0,
    // where both queues' leaders are (declared from there).
    if wanted("cluster_bus") {
        let urls = ferry_testkit::cluster::Cluster::from_harness().amqp_urls();
        let others: Vec<String> = urls[1..].iter().map(|u| host_port(u)).collect();
        let ferry = bus::ferry(&urls[0], &others, hops, msgs).await?;
        let lapin = bus::bare_lapin(&urls[0], hops, msgs).await?;
        for (prefix, r) in [("cluster_bus", &ferry), ("cluster_lapin", &lapin)] {
            println!("bench: {prefix}_hop_p50_ms = {:.3} ms", r.p50_ms);
            println!("bench: {prefix}_hop_p99_ms = {:.3} ms", r.p99_ms);
            println!("bench: {prefix}_msgs_per_s = {:.0} msg/s", r.msgs_per_s);
        }
    }

    if wanted("ledger") {
        let per_s = ledger::sqlite_events_per_s(env_or("BENCH_LEDGER_EVENTS", 20_000)).await?;
        println!("bench: ledger_events_per_s = {per_s:.0} events/s");
    }

    // The hook-receiver's dashboard with 10,000 runs read back from its ledger.
    if wanted("dashboard") {
        let d = dashboard::dashboard().await?;
        println!("bench: dashboard_runs_p50_ms = {:.1} ms", d.runs_p50_ms);
        println!("bench: dashboard_runs_p99_ms = {:.1} ms", d.runs_p99_ms);
        println!("bench: dashboard_run_p50_ms = {:.1} ms", d.run_p50_ms);
        println!("bench: dashboard_run_p99_ms = {:.1} ms", d.run_p99_ms);
        println!(
            "bench: dashboard_delivery_cold_ms = {:.1} ms",
            d.delivery_cold_ms
        );
        println!(
            "bench: dashboard_delivery_p50_ms = {:.1} ms",
            d.delivery_p50_ms
        );
        println!(
            "bench: dashboard_delivery_p99_ms = {:.1} ms",
            d.delivery_p99_ms
        );
        println!("bench: rss_dashboard_after_load_mb = {:.1} MB", d.rss_mb);
    }

    if wanted("hooks") {
        let connections = env_or("BENCH_HOOK_CONNECTIONS", 32);
        let hooks = hooks::accept(&url, connections, env_or("BENCH_HOOKS", 20_000)).await?;
        println!("bench: hook_accept_per_s = {:.0} hooks/s", hooks.per_s);
        println!("bench: hook_accept_p50_ms = {:.2} ms", hooks.p50_ms);
        println!("bench: hook_accept_p99_ms = {:.2} ms", hooks.p99_ms);
        // Each slow connection is a file descriptor on both ends (same process).
        let fds = hook_receiver::door::raise_fd_limit();
        let slow = env_or("BENCH_SLOWLORIS_CONNECTIONS", 2_000);
        anyhow::ensure!(
            fds.is_none_or(|n| n >= 2 * slow as u64 + 256),
            "the open-files limit ({fds:?}) is too low for {slow} slow connections: raise ulimit -n"
        );
        let cap = ferry_shared::config::DEFAULT_MAX_CONNECTIONS_PER_ADDRESS;
        // Each address stays under its own cap, so all of them hold places.
        let ms = hooks::accept_under_slowloris(&url, hooks::spread(slow, cap - 4)).await?;
        println!("bench: hook_accept_under_slowloris_ms = {ms:.1} ms");
        // One address asks for far more than its cap: the rest are refused.
        let over = hooks::spread(slow.min(cap * 4), usize::MAX);
        let ms = hooks::accept_under_slowloris(&url, over).await?;
        println!("bench: hook_accept_over_connection_cap_ms = {ms:.1} ms");
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

    if wanted("builds") {
        let b = builds::parallel8(&url).await?;
        println!("bench: build_single_s = {:.2} s", b.single_s);
        println!("bench: builds_parallel8_s = {:.2} s", b.parallel8_s);
        println!(
            "bench: builds_parallel8_over_single = {:.2}",
            b.parallel8_s / b.single_s
        );
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
    if wanted("e2e") {
        let f = e2e::e2e().await?;
        println!("bench: commit_to_prod_cold_s = {:.2} s", f.cold.total_s);
        println!("bench: commit_to_prod_warm_s = {:.2} s", f.warm.total_s);
        for (name, s) in &f.warm.stages {
            println!("bench: stage_{name}_s = {s:.2} s");
        }
        println!(
            "bench: inside_docker_and_tests_s = {:.2} s",
            f.warm.external_s
        );
        println!(
            "bench: overhead_s = {:.2} s",
            (f.warm.total_s - f.warm.external_s).max(0.0)
        );
        println!(
            "bench: overhead_cold_s = {:.2} s",
            (f.cold.total_s - f.cold.external_s).max(0.0)
        );
        for (svc, mb) in &f.rss_idle_mb {
            println!("bench: rss_{}_idle_mb = {mb:.1} MB", svc.replace('-', "_"));
        }
        for (svc, mb) in &f.rss_after_mb {
            println!("bench: rss_{}_after_mb = {mb:.1} MB", svc.replace('-', "_"));
        }
        println!("bench: secret_scan_items = {}", f.scanned_items);
        println!("bench: secret_leaks = {}", f.secret_leaks);
        println!("bench: settings_redacted = {}", f.settings_redacted);
        let (shell, ferry) = (shell_job::median(&f.shell_s), shell_job::median(&f.ferry_s));
        let rounds = |v: &[f64]| {
            v.iter()
                .map(|s| format!("{s:.2}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "bench: commit_to_prod_shell_s = {shell:.2} s (rounds {})",
            rounds(&f.shell_s[..])
        );
        println!(
            "bench: commit_to_prod_interleaved_s = {ferry:.2} s (rounds {})",
            rounds(&f.ferry_s[..])
        );
        println!("bench: commit_to_prod_over_shell = {:.2}", ferry / shell);
    }

    if wanted("shop") {
        let s = shop::figures().await?;
        println!("bench: shop_build_cold_s = {:.2} s", s.build_cold_s);
        println!("bench: shop_build_warm_s = {:.2} s", s.build_warm_s);
        println!("bench: shop_image_mb = {:.1} MB", s.image_mb);
        println!(
            "bench: shop_pull_linked_single_s = {:.2} s",
            s.pull_linked_single_s
        );
        println!(
            "bench: shop_pull_linked_parallel4_over_single = {:.2}",
            s.pull_linked_parallel4_s / s.pull_linked_single_s
        );
    }

    if wanted("switching") {
        let s = switching::switching().await?;
        println!("bench: deploy_requests = {}", s.sent);
        println!("bench: deploy_failed_requests = {}", s.failed);
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

/// `host:port` of an AMQP URL.
fn host_port(url: &str) -> String {
    let rest = url.split_once('@').map_or(url, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest).to_owned()
}

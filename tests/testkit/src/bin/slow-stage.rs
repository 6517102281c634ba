//! A stage whose handler takes `SLOW_STAGE_MS` milliseconds, then publishes
//! `image.built`: used to test SIGTERM during a handler in a real process.
//! Prints `handling <event_id>` when a handler starts.

use ferry_shared::bus::{Context, Handler, Outcome};
use ferry_shared::event::{Envelope, Event, ImageBuilt};
use ferry_shared::service::{ServiceDefaults, run_stage_main};
use std::io::Write;
use std::time::Duration;

struct Slow(Duration);

impl Handler for Slow {
    async fn handle(&self, ctx: Context, event: Envelope) -> Outcome {
        println!("handling {}", event.event_id);
        let _ = std::io::stdout().flush();
        tokio::time::sleep(self.0).await;
        tracing::info!("slow work finished");
        let built = event.follow(
            Event::ImageBuilt(ImageBuilt {
                docker_millis: None,
                build_host: None,
                revision: "1".into(),
                image: "r/slow:1".into(),
                config_commit: None,
                build_log: None,
            }),
            None,
        );
        match ctx.publish(&built).await {
            Ok(()) => Outcome::Done,
            Err(retry) => retry,
        }
    }
}

fn main() -> std::process::ExitCode {
    let ms = std::env::var("SLOW_STAGE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    let defaults = ServiceDefaults {
        admin_port: 0,
        prefetch: 1,
        handler_timeout_secs: 600,
        shutdown_grace_secs: 5,
        host_files: ferry_shared::config::HostFiles::Skip,
    };
    run_stage_main(
        ferry_shared::pipeline::stage("builder"),
        defaults,
        move |_| Slow(Duration::from_millis(ms)),
    )
}

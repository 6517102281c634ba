//! Ferry against the job it replaces: the old chain's shell job (`shell-job.sh`: svn
//! export + overlay, docker build, push, both pulls at once, then per environment start,
//! health, page check, remove the old one) on the same hosts, registry and Dockerfile,
//! interleaved with Ferry's commit → production, rounds of each. Both are timed from the
//! `svn commit` to production serving the commit (Ferry: `test.passed.production`; the
//! job: its page check in production). The job builds its own copy of the app
//! (`trunk/shell`, outside the project's path, so its commits start no Ferry run) so that
//! each of its builds has new content, as each of Ferry's has.

use ferry_testkit::project::svn;
use ferry_testkit::{free_port, harness_var};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const SCRIPT: &str = include_str!("shell-job.sh");

/// Where the job works: the e2e project's repositories, hosts and registry.
pub struct Job {
    pub wc: PathBuf,
    /// The SVN repository's root URL.
    pub svn_url: String,
    /// The config repo's project folder (its Dockerfile and `.env`).
    pub config_dir: PathBuf,
    pub overlay: String,
    pub build_host: String,
    pub staging_host: String,
    pub production_host: String,
    pub image: String,
    pub run_args: String,
    pub page_expect: String,
    ports: [u16; 4],
}

impl Job {
    /// The job for the e2e project at `wc` (a checkout of the repository's root):
    /// copies `trunk/app` to `trunk/shell`, the job's own copy.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        wc: &Path,
        svn_url: &str,
        config_dir: &Path,
        overlay: &str,
        hosts: (&str, &str, &str),
        image: &str,
        run_args: &str,
        page_expect: &str,
    ) -> Job {
        svn(wc, &["copy", "-q", "trunk/app", "trunk/shell"]);
        svn(wc, &["commit", "-q", "-m", "the shell job's copy"]);
        Job {
            wc: wc.to_owned(),
            svn_url: svn_url.to_owned(),
            config_dir: config_dir.to_owned(),
            overlay: overlay.to_owned(),
            build_host: hosts.0.to_owned(),
            staging_host: hosts.1.to_owned(),
            production_host: hosts.2.to_owned(),
            image: image.to_owned(),
            run_args: run_args.to_owned(),
            page_expect: page_expect.to_owned(),
            ports: [free_port(), free_port(), free_port(), free_port()],
        }
    }

    /// Commit a change to the job's copy and run the job on it: seconds from the
    /// commit to production serving it.
    pub fn round(&self, label: &str) -> anyhow::Result<f64> {
        std::fs::write(
            self.wc.join("trunk/shell/public/index.html"),
            format!("<h1>shell {label}</h1>\n"),
        )?;
        let started = Instant::now();
        let out = svn(&self.wc, &["commit", "-m", &format!("shell {label}")]);
        let revision = out
            .lines()
            .find_map(|l| l.strip_prefix("Committed revision "))
            .map(|r| r.trim_end_matches('.').to_owned())
            .ok_or_else(|| anyhow::anyhow!("no revision in `svn commit`'s answer: {out}"))?;
        let [s1, s2, p1, p2] = self.ports;
        let status = Command::new("bash")
            .arg("-c")
            .arg(SCRIPT)
            .env("SVN_URL", format!("{}/trunk/shell", self.svn_url))
            .env("REVISION", &revision)
            .env("SVN_USER", harness_var("FERRY_TEST_SVN_USER"))
            .env("SVN_PASSWORD", harness_var("FERRY_TEST_SVN_PASSWORD"))
            .env("CONFIG_DIR", &self.config_dir)
            .env("OVERLAY", &self.overlay)
            .env("BUILD_HOST", &self.build_host)
            .env("STAGING_HOST", &self.staging_host)
            .env("PRODUCTION_HOST", &self.production_host)
            .env("IMAGE", &self.image)
            .env("REGISTRY", harness_var("FERRY_TEST_REGISTRY"))
            .env("REGISTRY_USER", harness_var("FERRY_TEST_REGISTRY_USER"))
            .env(
                "REGISTRY_PASSWORD",
                harness_var("FERRY_TEST_REGISTRY_PASSWORD"),
            )
            .env("NAME", "shelljob")
            .env("STAGING_PORTS", format!("{s1} {s2}"))
            .env("PRODUCTION_PORTS", format!("{p1} {p2}"))
            .env("RUN_ARGS", &self.run_args)
            .env("HEALTH_PATH", "/healthz")
            .env("PAGE_PATH", "/revision")
            .env("PAGE_EXPECT", &self.page_expect)
            .status()?;
        anyhow::ensure!(
            status.success(),
            "the shell job failed ({status}) on r{revision}"
        );
        Ok(started.elapsed().as_secs_f64())
    }
}

pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

//! Every secret value in the configuration, for scrubbing text that leaves Ferry (test
//! output, notifications).

use super::FerryConfig;

impl FerryConfig {
    /// The secrets, sorted and without repeats. Short values are left out: scrubbing
    /// `ab` from a log would mangle it without protecting anything.
    pub fn secret_values(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .hooks
            .secrets()
            .into_iter()
            .map(|(_, s)| s)
            .chain([&self.build.svn_password])
            .flatten()
            .map(|s| s.expose().clone())
            .collect();
        v.extend(self.registry.iter().map(|r| r.password.expose().clone()));
        v.extend(
            self.environments
                .values()
                .filter_map(|e| e.rancher())
                .map(|r| r.secret_key.expose().clone()),
        );
        v.extend(self.operators.values().map(|o| o.token.expose().clone()));
        v.extend(self.marked_secrets());
        v.extend(self.url_secrets());
        if let Ok(url) = self.broker.url.expose().parse::<lapin::uri::AMQPUri>() {
            v.push(url.authority.userinfo.password);
        }
        v.extend(self.broker_user_passwords());
        v.retain(|s| s.len() >= 4);
        v.sort();
        v.dedup();
        v
    }
}

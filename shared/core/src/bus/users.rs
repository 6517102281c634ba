//! Least privilege on the bus: one RabbitMQ user per service, allowed to publish only
//! the routing keys that service produces. `ferry broker users` prints these as a
//! `rabbitmqctl` script. Without them, any service (or anyone holding its password, e.g.
//! a compromised build host) could publish `approval.granted.production` and deploy.
//!
//! What each user may do, in RabbitMQ's terms (regular expressions over names):
//! - configure / write / read: the events exchange, and the service's own queues and
//!   direct exchange (`<ns>.<service>`, `<ns>.<service>.*`): it declares its topology
//!   at start-up, publishes its retries and parking through its own exchange, and
//!   consumes its own queue. Nobody may write to the default exchange (`amq.default`),
//!   which would reach every queue.
//! - topic write on `<ns>.events`: exactly the routing keys the service publishes (its
//!   outputs and its stage's `<stage>.failed[.<env>]`).
//! - topic read on `<ns>.events`: exactly the binding keys of its queue.
//!
//! The updater also places approval holds and keeps locks and "latest request" queues
//! (`<ns>.hold.*`, `<ns>.lock.*`, `<ns>.latest.*`), published through its own direct
//! exchange. The hook-receiver reads the run history stream (`<ns>.history`, bound to
//! `#`) and takes approval holds (read only).

use super::topology::{exchange_name, history_queue_name};
use crate::config::{BrokerConfig, FerryConfig};
use crate::pipeline;

/// What one service's broker user may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Permissions {
    pub service: &'static str,
    pub user: String,
    pub configure: String,
    pub write: String,
    pub read: String,
    /// Routing keys it may publish on the events exchange.
    pub topic_write: String,
    /// Binding keys it may bind with on the events exchange.
    pub topic_read: String,
}

/// An environment name inside a routing key: one word.
const ENV: &str = r"[^.]+";

/// The routing keys each service publishes (besides `<stage>.failed[.<env>]`, added
/// from its stage), as regular expressions over the whole key.
fn publishes(service: &str) -> Vec<String> {
    let env = |kind: &str| format!(r"{kind}\.{ENV}");
    match service {
        "hook-receiver" => vec![
            r"source\.changed".into(),
            // Harbor's push hook starts a run at the pusher's output.
            r"image\.pushed".into(),
            env(r"approval\.(granted|rejected)"),
            env(r"deploy\.requested"),
            env(r"scale\.requested"),
        ],
        "builder" => vec![r"image\.built".into()],
        "pusher" => vec![r"image\.pushed".into()],
        "puller" => vec![env(r"image\.pulled")],
        "rancher-updater" => vec![
            format!(r"deploy\.(started|succeeded|superseded|rolled_back)(\.{ENV})?"),
            env(r"approval\.(requested|expired)"),
            env(r"scale\.succeeded"),
        ],
        "tester" => vec![env(r"test\.passed"), env(r"deploy\.superseded")],
        _ => Vec::new(),
    }
}

/// `ns` as a literal inside a regular expression (namespaces are `[a-z0-9_-]`).
fn lit(s: &str) -> String {
    s.replace('.', r"\.")
}

fn any_of(items: &[String]) -> String {
    format!("^({})$", items.join("|"))
}

/// A topic binding key (`image.pulled.*`, `*.failed.#`) as a literal regex.
fn binding_literal(key: &str) -> String {
    key.replace('.', r"\.").replace('*', r"\*")
}

/// The user a service connects as: the one in `services.<name>.broker_url`, else
/// `<namespace>-<service>`.
pub fn user_name(cfg: &FerryConfig, service: &str) -> String {
    cfg.service(service)
        .broker_url
        .and_then(|u| u.expose().parse::<lapin::uri::AMQPUri>().ok())
        .map(|u| u.authority.userinfo.username)
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| format!("{}-{service}", cfg.broker.namespace))
}

/// The permissions of every service's user.
pub fn permissions(cfg: &FerryConfig) -> Vec<Permissions> {
    let b: &BrokerConfig = &cfg.broker;
    let ns = lit(&b.namespace);
    let events = lit(&exchange_name(&b.namespace));
    let stages = pipeline::stages();
    crate::SERVICES
        .iter()
        .map(|&service| {
            let own = format!(r"{ns}\.{service}(\..*)?");
            let stage = stages.iter().find(|s| s.service == service);
            let mut keys = publishes(service);
            if let Some(stage) = stage {
                keys.push(format!(r"{}\.failed(\.{ENV})?", stage.stage));
            }
            let (configure, write, read, topic_read) = match service {
                "hook-receiver" => {
                    let history = lit(&history_queue_name(&b.namespace));
                    (
                        vec![events.clone(), history.clone()],
                        vec![events.clone(), history.clone()],
                        vec![events.clone(), history, format!(r"{ns}\.hold\..*")],
                        "^#$".to_owned(),
                    )
                }
                _ => {
                    let mut configure = vec![events.clone(), own.clone()];
                    let mut write = configure.clone();
                    let mut read = configure.clone();
                    if service == "rancher-updater" {
                        configure.push(format!(r"{ns}\.(lock|latest|hold)\..*"));
                        write.push(format!(r"{ns}\.(latest|hold)\..*"));
                        read.push(format!(r"{ns}\.(latest|hold)\..*"));
                    }
                    let bindings: Vec<String> = stage
                        .map(|s| s.bindings.iter().map(|k| binding_literal(k)).collect())
                        .unwrap_or_default();
                    (configure, write, read, any_of(&bindings))
                }
            };
            Permissions {
                service,
                user: user_name(cfg, service),
                configure: any_of(&configure),
                write: any_of(&write),
                read: any_of(&read),
                topic_write: any_of(&keys),
                topic_read,
            }
        })
        .collect()
}

/// The environment variable the script reads a service's password from.
pub fn password_variable(service: &str) -> String {
    format!(
        "FERRY_BROKER_PASSWORD_{}",
        service.replace('-', "_").to_uppercase()
    )
}

/// A shell script that creates (or updates) every service's user and sets its
/// permissions. Passwords come from `FERRY_BROKER_PASSWORD_<SERVICE>` and go to
/// `rabbitmqctl` on stdin, never on a command line; `RABBITMQCTL` picks the command.
pub fn script(cfg: &FerryConfig) -> String {
    let vhost = cfg
        .broker
        .url
        .expose()
        .parse::<lapin::uri::AMQPUri>()
        .map(|u| u.vhost)
        .unwrap_or_else(|_| "/".into());
    let exchange = exchange_name(&cfg.broker.namespace);
    let q = shell_quote;
    let mut out = format!(
        "#!/bin/sh\n\
         # Ferry's broker users for namespace `{ns}` on virtual host `{vhost}`: generated by\n\
         # `ferry broker users`. Set FERRY_BROKER_PASSWORD_<SERVICE> for each service (the\n\
         # password in its services.<name>.broker_url), then run this where rabbitmqctl\n\
         # reaches the broker (RABBITMQCTL overrides the command). Safe to run again.\n\
         set -eu\n\
         ctl() {{ ${{RABBITMQCTL:-rabbitmqctl}} -q \"$@\"; }}\n\
         user() {{\n\
         \x20   if ctl list_users | cut -f1 | grep -qxF \"$1\"; then\n\
         \x20       printf '%s' \"$2\" | ctl change_password \"$1\"\n\
         \x20   else\n\
         \x20       printf '%s' \"$2\" | ctl add_user \"$1\"\n\
         \x20   fi\n\
         }}\n",
        ns = cfg.broker.namespace,
    );
    for p in permissions(cfg) {
        let var = password_variable(p.service);
        out.push_str(&format!(
            "\n# {service}\n\
             user {user} \"${{{var}:?set {var} to the {service}'s broker password}}\"\n\
             ctl set_permissions -p {vh} {user} {c} {w} {r}\n\
             ctl set_topic_permissions -p {vh} {user} {x} {tw} {tr}\n",
            service = p.service,
            user = q(&p.user),
            vh = q(&vhost),
            c = q(&p.configure),
            w = q(&p.write),
            r = q(&p.read),
            x = q(&exchange),
            tw = q(&p.topic_write),
            tr = q(&p.topic_read),
        ));
    }
    out
}

/// Single-quoted for sh.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn perms(service: &str) -> Permissions {
        permissions(&FerryConfig::from_toml_with_env("", std::path::Path::new("x")).unwrap())
            .into_iter()
            .find(|p| p.service == service)
            .unwrap()
    }

    fn matches(re: &str, s: &str) -> bool {
        regex::Regex::new(re).unwrap().is_match(s)
    }

    #[test]
    fn the_builder_may_publish_its_outputs_and_nothing_that_deploys() {
        let p = perms("builder");
        assert_eq!(p.user, "ferry-builder");
        for ok in ["image.built", "build.failed"] {
            assert!(matches(&p.topic_write, ok), "{ok}");
        }
        for refused in [
            "approval.granted.production",
            "deploy.requested.production",
            "image.pushed",
            "image.built.x",
            "ximage.built",
        ] {
            assert!(!matches(&p.topic_write, refused), "{refused}");
        }
        assert!(!matches(&p.write, "amq.default"));
        assert!(!matches(&p.write, "ferry.rancher-updater"));
        assert!(matches(&p.write, "ferry.builder.direct"));
        assert!(matches(&p.topic_read, "source.changed"));
        assert!(!matches(&p.topic_read, "#"));
    }

    #[test]
    fn only_the_receiver_and_the_updater_publish_what_deploys() {
        let all =
            permissions(&FerryConfig::from_toml_with_env("", std::path::Path::new("x")).unwrap());
        let granting: Vec<&str> = all
            .iter()
            .filter(|p| matches(&p.topic_write, "approval.granted.production"))
            .map(|p| p.service)
            .collect();
        assert_eq!(granting, ["hook-receiver"]);
        let deploying: Vec<&str> = all
            .iter()
            .filter(|p| matches(&p.topic_write, "deploy.requested.production"))
            .map(|p| p.service)
            .collect();
        assert_eq!(deploying, ["hook-receiver"]);
        let p = perms("rancher-updater");
        assert!(matches(&p.topic_write, "deploy.succeeded.production"));
        assert!(matches(&p.topic_write, "deploy.failed"));
        assert!(matches(&p.topic_read, r"image.pulled.*"));
        for p in all {
            assert!(!matches(&p.write, "amq.default"), "{}", p.service);
        }
    }
}

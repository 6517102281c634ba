//! The settings in a project's secret files (the config repo's production `.env`,
//! `config.json`, `parameters.yml`, `config.php`), each format read for what it is (a
//! file of an unknown kind as `KEY=value` lines); which of their values are secrets is
//! the rule's business ([`super::rule`]).

use super::rule::{KeyRules, secrets_in};
use std::sync::LazyLock;

/// A `key = value` setting; `key` is the last name on its path (`password` for
/// `db.password`, the list's name for a list item).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Setting {
    key: String,
    value: String,
}

fn setting(key: &str, value: impl Into<String>) -> Setting {
    Setting {
        key: key.to_owned(),
        value: value.into(),
    }
}

/// The secret values of the file named `name` (its extension says the format).
pub fn secret_file_values(name: &str, text: &str, rules: &KeyRules) -> Vec<String> {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    let settings = match ext.as_deref() {
        Some("json") => json_settings(text),
        Some("yml" | "yaml") => yaml_settings(text),
        Some("php" | "inc") => php_settings(text),
        _ => env_settings(text),
    };
    let mut out = Vec::new();
    for s in settings {
        let found = secrets_in(&s.key, &s.value, rules);
        // A multi-line secret (a PEM key) shows in a log line by line: each line counts.
        if !found.is_empty() && s.value.contains('\n') {
            out.extend(
                s.value
                    .lines()
                    .map(str::trim)
                    .filter(|l| l.len() >= super::MIN_SECRET_LEN)
                    .map(str::to_owned),
            );
        }
        out.extend(found);
    }
    out
}

/// `KEY=value` lines (a `.env` file, optionally with `export`, quotes and a trailing
/// ` # comment` after an unquoted value). A quoted value may span lines (a PEM key).
fn env_settings(text: &str) -> Vec<Setting> {
    let mut out = Vec::new();
    let mut lines = text.lines().map(str::trim);
    while let Some(l) = lines.next() {
        if l.starts_with('#') {
            continue;
        }
        let Some((key, v)) = l.strip_prefix("export ").unwrap_or(l).split_once('=') else {
            continue;
        };
        let (key, v) = (key.trim(), v.trim());
        let open = ['"', '\''].into_iter().find(|&q| v.starts_with(q));
        if let Some(q) = open.filter(|&q| !v[1..].contains(q)) {
            let mut value = v[1..].to_owned();
            for more in lines.by_ref() {
                value.push('\n');
                match more.find(q) {
                    Some(end) => {
                        value.push_str(&more[..end]);
                        break;
                    }
                    None => value.push_str(more),
                }
            }
            out.push(setting(key, value));
            continue;
        }
        let v = scalar(v);
        if !v.is_empty() {
            out.push(setting(key, v));
        }
    }
    out
}

/// A value as written after `=` or `:`: the inside of its quotes, else the text before
/// a ` #` comment.
fn scalar(v: &str) -> String {
    for q in ['"', '\''] {
        if let Some(rest) = v.strip_prefix(q) {
            return match rest.find(q) {
                Some(end) => rest[..end].to_owned(),
                None => rest.to_owned(),
            };
        }
    }
    let end = v
        .match_indices('#')
        .map(|(i, _)| i)
        .find(|&i| i == 0 || v[..i].ends_with([' ', '\t']))
        .unwrap_or(v.len());
    v[..end].trim().to_owned()
}

/// Every string (and number) in a JSON document, under its object key.
fn json_settings(text: &str) -> Vec<Setting> {
    fn walk(key: &str, v: &serde_json::Value, out: &mut Vec<Setting>) {
        match v {
            serde_json::Value::String(s) => out.push(setting(key, s.clone())),
            serde_json::Value::Number(n) => out.push(setting(key, n.to_string())),
            serde_json::Value::Array(a) => a.iter().for_each(|v| walk(key, v, out)),
            serde_json::Value::Object(o) => o.iter().for_each(|(k, v)| walk(k, v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(doc) => walk("", &doc, &mut out),
        // Not valid JSON (a comment, a trailing comma): `"key": "value"` pairs instead.
        Err(_) => out.extend(quoted_pairs(text)),
    }
    out
}

/// `key: value` and `- value` lines of YAML (a list item under its list's key); a
/// block scalar (`key: |` or `>`) is one value of many lines. Anchors, aliases and flow
/// collections are not values.
fn yaml_settings(text: &str) -> Vec<Setting> {
    let indent = |l: &str| l.len() - l.trim_start().len();
    let mut out = Vec::new();
    // (indent, key) of the keys above the current line.
    let mut parents: Vec<(usize, String)> = Vec::new();
    let mut block: Option<(usize, Setting)> = None;
    for raw in text.lines() {
        if let Some((key_indent, s)) = block.as_mut() {
            if raw.trim().is_empty() || indent(raw) > *key_indent {
                if !raw.trim().is_empty() {
                    s.value.push_str(raw.trim());
                    s.value.push('\n');
                }
                continue;
            }
            let (_, s) = block.take().expect("a block");
            out.push(s);
        }
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let at = indent(raw);
        let (key, v) = match l.split_once(':') {
            Some((k, v)) if !l.starts_with("- ") && (v.is_empty() || v.starts_with(' ')) => {
                let key = k.trim().trim_matches(['"', '\'']).to_owned();
                parents.retain(|(i, _)| *i < at);
                parents.push((at, key.clone()));
                (key, v.trim())
            }
            _ => match l.strip_prefix("- ") {
                Some(item) => {
                    let key = parents
                        .iter()
                        .rev()
                        .find(|(i, _)| *i <= at)
                        .map(|(_, k)| k.clone())
                        .unwrap_or_default();
                    (key, item.trim())
                }
                None => continue,
            },
        };
        if v.starts_with(['|', '>']) {
            block = Some((at, setting(&key, String::new())));
            continue;
        }
        let v = scalar(v);
        if !v.is_empty() && !v.starts_with(['&', '*', '{', '[']) {
            out.push(setting(&key, v));
        }
    }
    if let Some((_, s)) = block {
        out.push(s);
    }
    for s in &mut out {
        s.value = s.value.trim_end().to_owned();
    }
    out.retain(|s| !s.value.is_empty());
    out
}

/// PHP config files: `'key' => 'value'`, `define('KEY', 'value')`, `$key = 'value';`.
fn php_settings(text: &str) -> Vec<Setting> {
    static ASSIGNED: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(
            r#"(?:['"]([^'"]*)['"]\s*=>|define\(\s*['"]([^'"]*)['"]\s*,|\$([A-Za-z_][A-Za-z0-9_]*)\s*=)\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)"|(-?[0-9][0-9.]*))"#,
        )
        .expect("a valid pattern")
    });
    ASSIGNED
        .captures_iter(text)
        .filter_map(|c| {
            let key = c.get(1).or(c.get(2)).or(c.get(3))?.as_str();
            let value = c.get(4).or(c.get(5)).or(c.get(6))?.as_str();
            Some(setting(
                key,
                value.replace("\\'", "'").replace("\\\"", "\""),
            ))
        })
        .collect()
}

/// `"key": "value"` pairs of a JSON-like text that does not parse.
fn quoted_pairs(text: &str) -> Vec<Setting> {
    static PAIR: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(r#""((?:[^"\\]|\\.)*)"\s*:\s*"((?:[^"\\]|\\.)*)""#)
            .expect("a valid pattern")
    });
    PAIR.captures_iter(text)
        .map(|c| setting(&c[1], &c[2]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(name: &str, text: &str) -> Vec<String> {
        secret_file_values(name, text, &KeyRules::default())
    }

    #[test]
    fn dotenv_lines_give_their_secrets_and_keep_their_settings() {
        let v = values(
            ".env",
            "# c=omment\nAPP_ENV=production\nDB_PASSWORD=\"s3cr3t\"\nexport API_KEY='k-123'\nEMPTY=\n\
             K=9fQ2xL7pZ3vR8tY1mW4s\nDB_PORT=3306\n",
        );
        assert_eq!(v, ["s3cr3t", "k-123", "9fQ2xL7pZ3vR8tY1mW4s"]);
    }

    #[test]
    fn a_trailing_comment_is_not_part_of_the_value() {
        let v = values(
            "app.env",
            "APP_KEY=base64:Zm9vYmFy # rotate yearly\nPW=\"a b # c\" # quoted\nSECRET=ab#cd\n",
        );
        assert_eq!(v, ["base64:Zm9vYmFy", "a b # c", "ab#cd"]);
    }

    #[test]
    fn json_yaml_and_php_secret_files_are_read_for_their_secrets() {
        let json = r#"{"db": {"password": "json-pw-1", "port": 3306, "host": "db.internal"},
                      "api_keys": ["k-json-2"], "debug": false, "token": 12345678901,
                      "env": "production"}"#;
        // (serde_json's objects are ordered by key.)
        assert_eq!(
            values("config/prod.json", json),
            ["k-json-2", "json-pw-1", "12345678901"]
        );
        let yaml = "parameters:\n  database_password: 'yaml-pw-1' # old\n  secret: yaml-s3cret\n  \
                    debug: false\n  env: production\n  api_tokens:\n    - yaml-host-key\n  text: |\n";
        assert_eq!(
            values("parameters.yml", yaml),
            ["yaml-pw-1", "yaml-s3cret", "yaml-host-key"]
        );
        let php = "<?php\nreturn [\n  'db' => ['password' => 'php-pw-1', 'port' => 3306, \
                   'charset' => 'utf8mb4'],\n];\ndefine('AUTH_KEY', \"php-auth-2\");\n\
                   $secret = 'php-\\'3';\n$env = 'production';\n";
        assert_eq!(
            values("wp-config.php", php),
            ["php-pw-1", "php-auth-2", "php-'3"]
        );
        // Not JSON (a trailing comma): its "key": "value" pairs still count.
        let broken = r#"{"password": "broken-pw-1", "env": "production",}"#;
        assert_eq!(values("x.json", broken), ["broken-pw-1"]);
    }

    #[test]
    fn multi_line_secrets_count_line_by_line() {
        let pem = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\nVJTUt9Us8cKjMzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu";
        let env = format!(
            "A=1\nJWT_KEY=\"-----BEGIN PRIVATE KEY-----\n{pem}\n-----END PRIVATE KEY-----\"\nB_SECRET=plain-value-123\n"
        );
        let v = values(".env", &env);
        for line in pem.lines() {
            assert!(v.iter().any(|x| x == line), "{line} missing from {v:?}");
        }
        assert!(v.iter().any(|x| x == "plain-value-123"), "{v:?}");

        let yaml = format!(
            "app:\n  key: |\n    {}\n    {}\n  user: deploy-user-1\n",
            pem.lines().next().unwrap(),
            pem.lines().nth(1).unwrap()
        );
        let v = values("a.yaml", &yaml);
        for line in pem.lines() {
            assert!(v.iter().any(|x| x == line), "{line} missing from {v:?}");
        }
        assert!(!v.iter().any(|x| x == "deploy-user-1"), "{v:?}");
    }
}

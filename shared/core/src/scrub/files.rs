//! The values in a project's secret files (the config repo's production `.env`,
//! `config.json`, `parameters.yml`, `config.php`): every value counts as a secret, since
//! the file holds production credentials. Each format is read for what it is; a file
//! of an unknown kind is read as `KEY=value` lines.

use std::sync::LazyLock;

/// Values that a secret file holds next to its secrets and that are not secrets: blanking
/// them out of logs would mangle them without protecting anything.
fn ordinary(v: &str) -> bool {
    const WORDS: &[&str] = &["true", "false", "null", "none", "yes", "no", "on", "off"];
    v.len() < super::MIN_SECRET_LEN
        || WORDS.iter().any(|w| v.eq_ignore_ascii_case(w))
        || (v.len() <= 5 && v.bytes().all(|b| b.is_ascii_digit()))
}

/// The secret values of the file named `name` (its extension says the format).
pub fn secret_file_values(name: &str, text: &str) -> Vec<String> {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    let mut values = match ext.as_deref() {
        Some("json") => json_values(text),
        Some("yml" | "yaml") => yaml_values(text),
        Some("php" | "inc") => php_values(text),
        _ => env_values(text),
    };
    values.retain(|v| !ordinary(v));
    values
}

/// Values of `KEY=value` lines (a `.env` file, optionally with `export`, quotes and a
/// trailing ` # comment` after an unquoted value). A quoted value may span lines (a PEM
/// key): each of its lines counts too, since a log shows a multi-line secret line by line.
pub fn env_values(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut lines = text.lines().map(str::trim);
    while let Some(l) = lines.next() {
        if l.starts_with('#') {
            continue;
        }
        let Some((_, v)) = l.strip_prefix("export ").unwrap_or(l).split_once('=') else {
            continue;
        };
        let v = v.trim();
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
            out.extend(
                value
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned),
            );
            out.push(value);
            continue;
        }
        let v = scalar(v);
        if !v.is_empty() {
            out.push(v);
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

/// Every string (and long number) in a JSON document.
fn json_values(text: &str) -> Vec<String> {
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::String(s) => out.push(s.clone()),
            serde_json::Value::Number(n) => out.push(n.to_string()),
            serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            serde_json::Value::Object(o) => o.values().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(doc) => walk(&doc, &mut out),
        // Not valid JSON (a comment, a trailing comma): every quoted string instead.
        Err(_) => out.extend(quoted_strings(text)),
    }
    out
}

/// `key: value` and `- value` lines of YAML; a block scalar (`key: |` or `>`) gives each
/// of its lines (anchors, aliases and flow collections are not values).
fn yaml_values(text: &str) -> Vec<String> {
    let indent = |l: &str| l.len() - l.trim_start().len();
    let mut out = Vec::new();
    let mut block: Option<usize> = None;
    for raw in text.lines() {
        if let Some(key_indent) = block {
            if raw.trim().is_empty() || indent(raw) > key_indent {
                out.push(raw.trim().to_owned());
                continue;
            }
            block = None;
        }
        let l = raw.trim();
        if l.starts_with('#') {
            continue;
        }
        let Some(v) = l
            .split_once(": ")
            .map(|(_, v)| v)
            .or_else(|| l.strip_prefix("- "))
        else {
            continue;
        };
        let v = v.trim();
        if v.starts_with(['|', '>']) {
            block = Some(indent(raw));
            continue;
        }
        let v = scalar(v);
        if !v.is_empty() && !v.starts_with(['&', '*', '{', '[']) {
            out.push(v);
        }
    }
    out.retain(|v| !v.is_empty());
    out
}

/// PHP config files: `'key' => 'value'`, `define('KEY', 'value')`, `$key = 'value';`.
fn php_values(text: &str) -> Vec<String> {
    static ASSIGNED: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(
            r#"(?:=>|=|define\(\s*['"][^'"]*['"]\s*,)\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)"|(-?[0-9][0-9.]*))"#,
        )
        .expect("a valid pattern")
    });
    ASSIGNED
        .captures_iter(text)
        .filter_map(|c| c.get(1).or(c.get(2)).or(c.get(3)))
        .map(|m| m.as_str().replace("\\'", "'").replace("\\\"", "\""))
        .collect()
}

fn quoted_strings(text: &str) -> Vec<String> {
    static QUOTED: LazyLock<regex::Regex> =
        LazyLock::new(|| regex::Regex::new(r#""((?:[^"\\]|\\.)*)""#).expect("a valid pattern"));
    QUOTED
        .captures_iter(text)
        .filter_map(|c| c.get(1))
        .map(|m| m.as_str().to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_values_are_read_from_dotenv_lines() {
        let v = env_values("# c=omment\nDB_PASSWORD=\"s3cr3t\"\nexport API_KEY='k-123'\nEMPTY=\n");
        assert_eq!(v, ["s3cr3t", "k-123"]);
    }

    #[test]
    fn a_trailing_comment_is_not_part_of_the_value() {
        let v = env_values(
            "APP_KEY=base64:Zm9vYmFy # rotate yearly\nPW=\"a b # c\" # quoted\nHASH=ab#cd\n",
        );
        assert_eq!(v, ["base64:Zm9vYmFy", "a b # c", "ab#cd"]);
    }

    #[test]
    fn json_yaml_and_php_secret_files_are_read_for_their_values() {
        let json = r#"{"db": {"password": "json-pw-1", "port": 3306}, "keys": ["k-json-2"],
                      "debug": false, "token": 12345678901}"#;
        assert_eq!(
            secret_file_values("config/prod.json", json),
            ["json-pw-1", "k-json-2", "12345678901"]
        );
        let yaml = "parameters:\n  database_password: 'yaml-pw-1' # old\n  secret: yaml-s3cret\n  \
                    debug: false\n  hosts:\n    - yaml-host-key\n  text: |\n";
        assert_eq!(
            secret_file_values("parameters.yml", yaml),
            ["yaml-pw-1", "yaml-s3cret", "yaml-host-key"]
        );
        let php = "<?php\nreturn [\n  'db' => ['password' => 'php-pw-1', 'port' => 3306],\n];\n\
                   define('AUTH_KEY', \"php-auth-2\");\n$secret = 'php-\\'3';\n";
        assert_eq!(
            secret_file_values("wp-config.php", php),
            ["php-pw-1", "php-auth-2", "php-'3"]
        );
    }

    #[test]
    fn multi_line_secrets_count_line_by_line() {
        let pem = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\nVJTUt9Us8cKjMzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu";
        let env = format!(
            "A=1\nJWT_KEY=\"-----BEGIN PRIVATE KEY-----\n{pem}\n-----END PRIVATE KEY-----\"\nB=plain-value-123\n"
        );
        let v = env_values(&env);
        for line in pem.lines() {
            assert!(v.iter().any(|x| x == line), "{line} missing from {v:?}");
        }
        assert!(v.iter().any(|x| x == "plain-value-123"), "{v:?}");

        let yaml = format!(
            "app:\n  key: |\n    {}\n    {}\n  user: deploy-user-1\n",
            pem.lines().next().unwrap(),
            pem.lines().nth(1).unwrap()
        );
        let v = yaml_values(&yaml);
        for line in pem.lines() {
            assert!(v.iter().any(|x| x == line), "{line} missing from {v:?}");
        }
        assert!(v.iter().any(|x| x == "deploy-user-1"), "{v:?}");
    }
}

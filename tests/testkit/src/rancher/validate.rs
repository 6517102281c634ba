//! Request fields checked as cattle's schemas and validation filters check them.

use super::errors::Invalid;
use serde_json::{Map, Value, json};

/// `name` as the schemas define it: 1-63 characters of `a-zA-Z0-9-`.
pub(super) fn check_name(v: Option<&Value>) -> Result<Option<String>, Invalid> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            if s.is_empty() {
                Err(Invalid("MinLengthExceeded", "name"))
            } else if s.chars().count() > 63 {
                Err(Invalid("MaxLengthExceeded", "name"))
            } else if !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                Err(Invalid("InvalidCharacters", "name"))
            } else {
                Ok(Some(s.clone()))
            }
        }
        Some(_) => Err(Invalid("InvalidFormat", "name")),
    }
}

/// A service name is also a DNS label (`validateDNSPatternForName`).
pub(super) fn check_dns_name(name: &str) -> Result<(), Invalid> {
    let ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && !name.contains("--")
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(Invalid("InvalidCharacters", "name"))
    }
}

/// `scale`: an int, at least 0.
pub(super) fn check_scale(v: Option<&Value>) -> Result<Option<u32>, Invalid> {
    let n = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
        Some(_) => None,
    };
    match n {
        None => Err(Invalid("InvalidFormat", "scale")),
        Some(n) if n < 0 => Err(Invalid("MinLimitExceeded", "scale")),
        Some(n) => u32::try_from(n)
            .map(Some)
            .map_err(|_| Invalid("MaxLimitExceeded", "scale")),
    }
}

/// A launchConfig as given, with the defaults Rancher fills in; or the error.
pub(super) fn check_launch(launch: &Map<String, Value>) -> Result<Value, Invalid> {
    let Some(image) = launch.get("imageUuid").filter(|v| !v.is_null()) else {
        return Err(Invalid("MissingRequired", "imageUuid"));
    };
    if let Some(hc) = launch.get("healthCheck").filter(|v| !v.is_null()) {
        if !hc.is_object() {
            return Err(Invalid("InvalidFormat", "healthCheck"));
        }
        if hc["port"].is_null() {
            return Err(Invalid("MissingRequired", "port"));
        }
        if !hc["port"].is_u64() {
            return Err(Invalid("InvalidFormat", "port"));
        }
    }
    for field in ["command", "entryPoint"] {
        if launch
            .get(field)
            .is_some_and(|v| !v.is_null() && !v.is_array())
        {
            return Err(Invalid("InvalidFormat", field));
        }
    }
    for field in ["environment", "labels"] {
        if launch
            .get(field)
            .is_some_and(|v| !v.is_null() && !v.is_object())
        {
            return Err(Invalid("InvalidFormat", field));
        }
    }
    // `ExternalTemplateInstanceFilter.getImageUuid`: only `docker:` images are valid.
    let valid = image
        .as_str()
        .and_then(|s| s.strip_prefix("docker:"))
        .is_some_and(|s| !s.trim().is_empty());
    if !valid {
        return Err(Invalid("InvalidReference", "imageUuid"));
    }
    let mut launch = launch.clone();
    if launch.get("networkMode").is_none_or(Value::is_null) {
        launch.insert("networkMode".into(), json!("managed"));
    }
    Ok(Value::Object(launch))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated_as_rancher_does() {
        assert!(check_name(Some(&json!("shop-1"))).is_ok());
        let Err(Invalid(code, field)) = check_name(Some(&json!("a_b"))) else {
            panic!("a_b is no name")
        };
        assert_eq!((code, field), ("InvalidCharacters", "name"));
        assert!(matches!(
            check_name(Some(&json!(""))),
            Err(Invalid("MinLengthExceeded", _))
        ));
        assert!(check_dns_name("a--b").is_err() && check_dns_name("-a").is_err());
        assert!(check_scale(Some(&json!(-1))).is_err());
        assert_eq!(check_scale(Some(&json!(2))).ok().flatten(), Some(2));
    }
}

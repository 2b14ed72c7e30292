//! Validation: each value of a configuration, in its JSON form, against its row of the table. An
//! error names the (dotted) key and what its row allows.

use super::table::{Field, KEYS, Kind};
use super::{ConfigError, Cutoffs, Result};
use serde_json::Value;

/// Checks a whole configuration (its JSON form); the first value refused is the error.
pub(super) fn validate(config: &Value) -> Result<()> {
    check_object(KEYS, config, "")
}

fn check_object(fields: &[Field], object: &Value, prefix: &str) -> Result<()> {
    for field in fields {
        check(field, &object[field.key], &format!("{prefix}{}", field.key))?;
    }
    Ok(())
}

fn check(field: &Field, value: &Value, key: &str) -> Result<()> {
    // What was given, when it is refused.
    let refused = match &field.kind {
        // Its type was checked when it was read.
        Kind::Bool => None,
        Kind::Number { min, max } => match value.as_f64() {
            Some(v) if (*min..=*max).contains(&v) => None,
            Some(v) => Some(v.to_string()),
            // The JSON form has no NaN or infinity: they become null.
            None => Some("not a finite number".into()),
        },
        Kind::Integer { min, max } => match value.as_u64() {
            Some(v) if (*min..=*max).contains(&v) => None,
            _ => Some(value.to_string()),
        },
        Kind::Cutoffs => match serde_json::from_value::<Cutoffs>(value.clone()) {
            Ok(c) if ascending(&c) => None,
            Ok(c) => Some(format!("{c:?}")),
            Err(_) => Some(value.to_string()),
        },
        Kind::Paths => match serde_json::from_value::<Vec<String>>(value.clone()) {
            Ok(paths) if paths.iter().all(|p| p.starts_with('/')) => None,
            Ok(paths) => Some(format!("{paths:?}")),
            Err(_) => Some(value.to_string()),
        },
        Kind::Object(fields) => return check_object(fields, value, &format!("{key}.")),
        Kind::PerService(fields) => {
            for (service, overrides) in value.as_object().into_iter().flatten() {
                for field in *fields {
                    let v = &overrides[field.key];
                    // Null: this service keeps the global value.
                    if !v.is_null() {
                        check(field, v, &format!("{key}.{service}.{}", field.key))?;
                    }
                }
            }
            return Ok(());
        }
    };
    match refused {
        None => Ok(()),
        Some(got) => Err(ConfigError::OutOfRange {
            key: key.to_owned(),
            got,
            allowed: field.kind.allowed(),
        }),
    }
}

fn ascending(c: &Cutoffs) -> bool {
    c.medium.is_finite()
        && c.critical.is_finite()
        && 0.0 < c.medium
        && c.medium <= c.high
        && c.high <= c.critical
}

#[cfg(test)]
mod tests {
    use crate::config::{ConfigError, DetectionConfig};
    use serde_json::json;

    #[test]
    fn a_value_without_a_json_form_is_refused() {
        let config = DetectionConfig {
            latency_threshold_stddev: f64::NAN,
            ..DetectionConfig::default()
        };
        let err = config.validate().unwrap_err();
        assert_eq!(err.key(), Some("latency_threshold_stddev"));
        assert!(err.to_string().contains("allowed: 1 to 50"), "{err}");
    }

    #[test]
    fn per_service_values_are_checked_unless_unset() {
        let ok = json!({"service_overrides": {"cart": {"error_rate_threshold": null}}});
        DetectionConfig::from_json(&ok).unwrap();
        let bad = json!({"service_overrides": {"cart": {"error_rate_threshold": 2}}});
        let err = DetectionConfig::from_json(&bad).unwrap_err();
        assert_eq!(
            err,
            ConfigError::OutOfRange {
                key: "service_overrides.cart.error_rate_threshold".into(),
                got: "2".into(),
                allowed: "0.0001 to 1".into(),
            }
        );
    }
}

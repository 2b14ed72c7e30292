//! Access control: who may call what. Bearer tokens are API keys (`TRACEWATCH_API_KEYS`, `role:key`
//! pairs) or JWTs signed HS256 (`TRACEWATCH_JWT_SECRET`; the role read from a configurable claim, as
//! Supabase's access tokens carry it). Tokens are never logged or echoed: errors say what was wrong
//! with a token, never the token.
//!
//! Roles: `viewer` reads; `operator` also resolves anomalies and requests runs; `admin` also changes the
//! configuration and may send spans; `ingest` may only send spans (for an OpenTelemetry Collector, so
//! its credential cannot read or change anything).

use crate::error::ApiError;
use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, web};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::future::{Ready, ready};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Viewer,
    Operator,
    Admin,
    Ingest,
}

/// What a handler needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    Read,
    Operate,
    Configure,
    Ingest,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s.trim().to_ascii_lowercase().as_str() {
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            "ingest" => Some(Role::Ingest),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
            Role::Ingest => "ingest",
        }
    }

    pub fn allows(self, permission: Permission) -> bool {
        use Permission as P;
        match self {
            Role::Viewer => permission == P::Read,
            Role::Operator => matches!(permission, P::Read | P::Operate),
            Role::Admin => true,
            Role::Ingest => permission == P::Ingest,
        }
    }
}

/// Why the access settings were refused at start.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AuthConfigError {
    #[error(
        "TRACEWATCH_API_KEYS entry {index} must be `role:key` with a role of viewer, operator, admin or ingest"
    )]
    BadKeyEntry { index: usize },
    #[error("TRACEWATCH_API_KEYS entry {index} has a key shorter than 16 characters")]
    ShortKey { index: usize },
    #[error("TRACEWATCH_JWT_SECRET is shorter than 32 bytes")]
    ShortSecret,
}

struct ApiKey {
    digest: [u8; 32],
    role: Role,
    /// Recorded as who resolved an anomaly: the role and the first digest bytes, never the key.
    name: String,
}

struct Jwt {
    key: DecodingKey,
    validation: Validation,
    /// Dotted path of the claim holding the role, for example `app_metadata.role`.
    role_claim: Vec<String>,
}

/// The access settings, validated once at start.
pub struct Authenticator {
    keys: Vec<ApiKey>,
    jwt: Option<Jwt>,
}

/// Who is calling.
#[derive(Clone, Debug, PartialEq)]
pub struct Caller {
    pub name: String,
    pub role: Role,
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Authenticator {
    /// No tokens at all: every caller is an admin (allowed on loopback only; see `settings`).
    pub fn disabled() -> Self {
        Authenticator {
            keys: Vec::new(),
            jwt: None,
        }
    }

    /// `api_keys`: comma-separated `role:key`; `jwt_secret`: the HS256 secret; `role_claim`: where the
    /// role is in a JWT; `audience`: the `aud` a JWT must carry, if any.
    pub fn new(
        api_keys: Option<&str>,
        jwt_secret: Option<&str>,
        role_claim: &str,
        audience: Option<&str>,
    ) -> Result<Self, AuthConfigError> {
        let mut keys = Vec::new();
        for (index, entry) in api_keys
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .enumerate()
        {
            let (role, key) = entry
                .split_once(':')
                .and_then(|(r, k)| Some((Role::parse(r)?, k.trim())))
                .ok_or(AuthConfigError::BadKeyEntry { index: index + 1 })?;
            if key.len() < 16 {
                return Err(AuthConfigError::ShortKey { index: index + 1 });
            }
            let digest = digest(key);
            keys.push(ApiKey {
                name: format!("key:{}:{}", role.as_str(), hex::encode(&digest[..4])),
                digest,
                role,
            });
        }
        let jwt = match jwt_secret.filter(|s| !s.is_empty()) {
            None => None,
            Some(secret) if secret.len() < 32 => return Err(AuthConfigError::ShortSecret),
            Some(secret) => {
                let mut validation = Validation::new(Algorithm::HS256);
                match audience {
                    Some(aud) => validation.set_audience(&[aud]),
                    None => validation.validate_aud = false,
                }
                Some(Jwt {
                    key: DecodingKey::from_secret(secret.as_bytes()),
                    validation,
                    role_claim: role_claim.split('.').map(str::to_owned).collect(),
                })
            }
        };
        Ok(Authenticator { keys, jwt })
    }

    pub fn is_enabled(&self) -> bool {
        !self.keys.is_empty() || self.jwt.is_some()
    }

    /// The caller behind an `Authorization` header value (or its absence).
    pub fn authenticate(&self, header: Option<&str>) -> Result<Caller, ApiError> {
        if !self.is_enabled() {
            return Ok(Caller {
                name: "anonymous".into(),
                role: Role::Admin,
            });
        }
        let token = header
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| unauthorized("send `Authorization: Bearer <token>`"))?;
        let wanted = digest(token);
        if let Some(key) = self.keys.iter().find(|k| k.digest == wanted) {
            return Ok(Caller {
                name: key.name.clone(),
                role: key.role,
            });
        }
        let Some(jwt) = &self.jwt else {
            return Err(unauthorized("the token is not a known API key"));
        };
        let claims = jsonwebtoken::decode::<Value>(token, &jwt.key, &jwt.validation)
            .map_err(|e| unauthorized(&format!("the token is not a valid JWT: {e}")))?
            .claims;
        let role_value = jwt
            .role_claim
            .iter()
            .try_fold(&claims, |v, part| v.get(part))
            .and_then(Value::as_str);
        let role = role_value.and_then(Role::parse).ok_or_else(|| {
            forbidden(&format!(
                "the token's `{}` claim is not viewer, operator, admin or ingest",
                jwt.role_claim.join(".")
            ))
        })?;
        let name = claims
            .get("sub")
            .and_then(Value::as_str)
            .map_or_else(|| "jwt".to_owned(), |s| format!("jwt:{s}"));
        Ok(Caller { name, role })
    }
}

fn unauthorized(message: &str) -> ApiError {
    ApiError {
        status: StatusCode::UNAUTHORIZED,
        error: "unauthorized",
        message: message.to_owned(),
        details: Value::Null,
    }
}

fn forbidden(message: &str) -> ApiError {
    ApiError {
        status: StatusCode::FORBIDDEN,
        error: "forbidden",
        message: message.to_owned(),
        details: Value::Null,
    }
}

impl Caller {
    pub fn require(&self, permission: Permission) -> Result<&Self, ApiError> {
        if self.role.allows(permission) {
            Ok(self)
        } else {
            Err(ApiError {
                details: json!({ "role": self.role.as_str() }),
                ..forbidden(&format!(
                    "the {} role may not do this ({permission:?} is needed)",
                    self.role.as_str()
                ))
            })
        }
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Caller, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let header = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        ready(match req.app_data::<web::Data<Authenticator>>() {
            Some(auth) => auth.authenticate(header),
            None => Err(ApiError::internal("access control is not configured")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header, encode};

    const SECRET: &str = "a-secret-of-at-least-thirty-two-bytes!";

    fn jwt(claims: Value, secret: &str) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    fn exp() -> i64 {
        chrono::Utc::now().timestamp() + 600
    }

    #[test]
    fn roles_grant_what_they_say() {
        assert!(Role::Viewer.allows(Permission::Read));
        assert!(!Role::Viewer.allows(Permission::Operate));
        assert!(Role::Operator.allows(Permission::Operate));
        assert!(!Role::Operator.allows(Permission::Configure));
        assert!(Role::Admin.allows(Permission::Configure));
        assert!(Role::Ingest.allows(Permission::Ingest));
        assert!(!Role::Ingest.allows(Permission::Read));
    }

    #[test]
    fn api_keys_are_parsed_and_checked() {
        let auth = Authenticator::new(
            Some("viewer:view-key-0123456789, operator:oper-key-0123456789"),
            None,
            "role",
            None,
        )
        .unwrap();
        let caller = auth
            .authenticate(Some("Bearer oper-key-0123456789"))
            .unwrap();
        assert_eq!(caller.role, Role::Operator);
        assert!(!caller.name.contains("oper-key"));
        let err = auth.authenticate(Some("Bearer nope")).unwrap_err();
        assert_eq!(err.status, StatusCode::UNAUTHORIZED);
        assert!(!err.message.contains("nope"));
        assert_eq!(
            auth.authenticate(None).unwrap_err().status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            Authenticator::new(Some("root:abcdefabcdefabcdef"), None, "role", None).err(),
            Some(AuthConfigError::BadKeyEntry { index: 1 })
        );
        assert_eq!(
            Authenticator::new(Some("admin:short"), None, "role", None).err(),
            Some(AuthConfigError::ShortKey { index: 1 })
        );
    }

    #[test]
    fn supabase_style_jwts_carry_the_role_in_a_nested_claim() {
        let auth = Authenticator::new(
            None,
            Some(SECRET),
            "app_metadata.tracewatch_role",
            Some("authenticated"),
        )
        .unwrap();
        let token = jwt(
            json!({ "sub": "u-1", "aud": "authenticated", "exp": exp(),
                    "role": "authenticated", "app_metadata": { "tracewatch_role": "admin" } }),
            SECRET,
        );
        let caller = auth.authenticate(Some(&format!("Bearer {token}"))).unwrap();
        assert_eq!(
            caller,
            Caller {
                name: "jwt:u-1".into(),
                role: Role::Admin
            }
        );

        let wrong_secret = jwt(
            json!({ "aud": "authenticated", "exp": exp(), "app_metadata": { "tracewatch_role": "admin" } }),
            "another-secret-of-thirty-two-bytes-long",
        );
        let err = auth
            .authenticate(Some(&format!("Bearer {wrong_secret}")))
            .unwrap_err();
        assert_eq!(err.status, StatusCode::UNAUTHORIZED);

        let expired = jwt(
            json!({ "aud": "authenticated", "exp": 1_000, "app_metadata": { "tracewatch_role": "admin" } }),
            SECRET,
        );
        assert_eq!(
            auth.authenticate(Some(&format!("Bearer {expired}")))
                .unwrap_err()
                .status,
            StatusCode::UNAUTHORIZED
        );

        let no_role = jwt(json!({ "aud": "authenticated", "exp": exp() }), SECRET);
        assert_eq!(
            auth.authenticate(Some(&format!("Bearer {no_role}")))
                .unwrap_err()
                .status,
            StatusCode::FORBIDDEN
        );
    }

    #[test]
    fn short_secrets_are_refused() {
        assert_eq!(
            Authenticator::new(None, Some("short"), "role", None).err(),
            Some(AuthConfigError::ShortSecret)
        );
    }
}

//! Who is calling: `X-User-ID` from a trusted gateway, or a JWT bearer token.
//! What the caller may do is decided by the engine (`engine::access`).
//!
//! An identity is taken exactly as sent or refused, never normalized into
//! another (`UserId::parse`).

use std::collections::HashSet;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::error::ApiError as Error;
use crate::config::{AuthMode, AuthSettings};
use crate::domain::{Caller, UserId};

pub struct Authenticator {
    scheme: Scheme,
    platform_admins: HashSet<String>,
}

enum Scheme {
    Header,
    /// The key and the one algorithm configuration allows: a token signed
    /// with anything else (`none` included) is refused.
    Jwt {
        key: DecodingKey,
        validation: Box<Validation>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    #[error("auth mode jwt needs TENANT_JWT_SECRET (HS256) or TENANT_JWT_PUBLIC_KEY_FILE (RS256)")]
    NoKey,
    #[error("set only one of TENANT_JWT_SECRET and TENANT_JWT_PUBLIC_KEY_FILE: the algorithm must be unambiguous")]
    TwoKeys,
    #[error("cannot read the JWT public key file {path}: {reason}")]
    KeyFile { path: String, reason: String },
    #[error("platform admin {0:?} can never authenticate: a user id {1}")]
    PlatformAdmin(String, String),
}

/// Seconds of clock skew allowed when checking `exp` and `nbf`.
const LEEWAY_SECS: u64 = 30;

#[derive(Deserialize)]
struct Claims {
    sub: String,
}

impl Authenticator {
    pub fn new(settings: &AuthSettings) -> Result<Self, AuthConfigError> {
        let scheme = match settings.mode {
            AuthMode::Header => Scheme::Header,
            AuthMode::Jwt => {
                let (key, algorithm) = match (&settings.jwt_secret, &settings.jwt_public_key_file) {
                    (Some(secret), None) => (DecodingKey::from_secret(secret.as_bytes()), Algorithm::HS256),
                    (None, Some(path)) => {
                        let err = |reason: String| AuthConfigError::KeyFile {
                            path: path.display().to_string(),
                            reason,
                        };
                        let pem = std::fs::read(path).map_err(|e| err(e.to_string()))?;
                        (
                            DecodingKey::from_rsa_pem(&pem).map_err(|e| err(e.to_string()))?,
                            Algorithm::RS256,
                        )
                    }
                    (None, None) => return Err(AuthConfigError::NoKey),
                    (Some(_), Some(_)) => return Err(AuthConfigError::TwoKeys),
                };
                let mut validation = Validation::new(algorithm);
                validation.validate_exp = true;
                validation.validate_nbf = true;
                // Clock skew between the issuer and us (README, "Authentication").
                validation.leeway = LEEWAY_SECS;
                // jsonwebtoken checks `aud` and `iss` only when the token has
                // them: configured, they must also be required.
                let mut required = vec!["exp", "sub"];
                match &settings.jwt_audience {
                    Some(aud) => {
                        validation.set_audience(&[aud]);
                        required.push("aud");
                    }
                    None => validation.validate_aud = false,
                }
                if let Some(iss) = &settings.jwt_issuer {
                    validation.set_issuer(&[iss]);
                    required.push("iss");
                }
                validation.set_required_spec_claims(&required);
                Scheme::Jwt {
                    key,
                    validation: Box::new(validation),
                }
            }
        };
        for admin in &settings.platform_admins {
            if let Err(e) = UserId::parse(admin) {
                let rule = e.to_string().trim_start_matches("user_id ").to_owned();
                return Err(AuthConfigError::PlatformAdmin(admin.clone(), rule));
            }
        }
        Ok(Authenticator {
            scheme,
            platform_admins: settings.platform_admins.iter().cloned().collect(),
        })
    }

    /// The caller of a request, from its `X-User-ID` and `Authorization` headers.
    pub fn identify(&self, x_user_id: Option<&str>, authorization: Option<&str>) -> Result<Caller, Error> {
        let user = match &self.scheme {
            Scheme::Header => x_user_id
                .and_then(|raw| UserId::parse(raw).ok())
                .ok_or(Error::Unauthenticated)?,
            Scheme::Jwt { key, validation } => {
                let token = authorization
                    .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
                    .map(str::trim)
                    .ok_or(Error::InvalidCredentials)?;
                // Why a token failed (signature, expiry, audience) is logged,
                // never told to the caller.
                let token = jsonwebtoken::decode::<Claims>(token, key, validation).map_err(|e| {
                    tracing::debug!(error = %e, "bearer token refused");
                    Error::InvalidCredentials
                })?;
                // RFC 7515 §4.1.11: a `crit` header names extensions the
                // token is invalid without; we understand none.
                if let Some(crit) = &token.header.crit {
                    tracing::debug!(?crit, "bearer token refused: crit header");
                    return Err(Error::InvalidCredentials);
                }
                UserId::parse(&token.claims.sub).map_err(|_| Error::InvalidCredentials)?
            }
        };
        let platform_admin = self.platform_admins.contains(user.as_str());
        Ok(Caller { user, platform_admin })
    }
}

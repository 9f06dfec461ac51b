//! The runtime token (`$ACTIONS_RUNTIME_TOKEN`, a JWT): its claims read unverified, as
//! go-actions-cache reads them (the service checks the signature): `ac`, a JSON text listing the
//! cache scopes (git refs) with their permissions, `exp` and `nbf`.

use base64::Engine as _;
use serde::Deserialize;

/// A scope's permission bits, as go-actions-cache's `Permission`.
pub const READ: u32 = 1;
pub const WRITE: u32 = 2;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Scope {
    // Go's encoding/json matches field names case-insensitively
    #[serde(alias = "scope", alias = "SCOPE")]
    #[serde(rename = "Scope")]
    pub scope: String,
    #[serde(alias = "permission", alias = "PERMISSION")]
    #[serde(rename = "Permission")]
    pub permission: u32,
}

#[derive(Clone)]
pub struct Token {
    /// The token as given (sent as `Authorization: Bearer`); never in a message.
    pub raw: String,
    pub scopes: Vec<Scope>,
    pub expires: i64,
    pub not_before: i64,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Token({:?}, exp {}, nbf {})", self.scopes, self.expires, self.not_before)
    }
}

impl PartialEq for Token {
    fn eq(&self, o: &Token) -> bool {
        self.raw == o.raw
    }
}
impl Eq for Token {}

impl Token {
    /// Reads a JWT's claims as go-actions-cache's `New` does, at time `now` (Unix seconds): an
    /// expired token, or one not valid yet, is refused (in its words).
    pub fn parse(raw: &str, now: i64) -> Result<Token, String> {
        let parts: Vec<&str> = raw.split('.').collect();
        if parts.len() != 3 {
            return Err("token is malformed: token contains an invalid number of segments".into());
        }
        let seg = |i: usize, what: &str| -> Result<serde_json::Value, String> {
            let b = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(parts[i].trim_end_matches('='))
                .map_err(|e| format!("token is malformed: could not base64 decode {what}: {e}"))?;
            serde_json::from_slice(&b).map_err(|e| format!("token is malformed: could not JSON decode {what}: {e}"))
        };
        seg(0, "header")?;
        let claims = seg(1, "claim")?;
        let ac = match claims.get("ac") {
            None => return Err("invalid token without access controls".into()),
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(v) => return Err(format!("invalid token with access controls type {}", json_type(v))),
        };
        let time = |name: &str| -> Result<i64, String> {
            match claims.get(name) {
                None => Err(format!("invalid token without {name}")),
                Some(serde_json::Value::Number(n)) => {
                    n.as_f64().map(|f| f as i64).ok_or_else(|| format!("{name}: {n}"))
                }
                Some(v) => Err(format!("invalid token with {name} type {}", json_type(v))),
            }
        };
        let (expires, not_before) = (time("exp")?, time("nbf")?);
        if now > expires {
            return Err(format!("cache token expired at {} (Unix time)", expires));
        }
        if now < not_before {
            return Err(format!("invalid token with future issue time {} (Unix time)", not_before));
        }
        let scopes: Vec<Scope> =
            serde_json::from_str(&ac).map_err(|e| format!("failed to parse token access controls: {e}"))?;
        Ok(Token { raw: raw.to_string(), scopes, expires, not_before })
    }

    /// The scope the cache is written to: the last one with write permission (go-actions-cache's
    /// loop keeps the last), "" when none has.
    pub fn write_scope(&self) -> &str {
        self.scopes.iter().rev().find(|s| s.permission & WRITE != 0).map(|s| s.scope.as_str()).unwrap_or("")
    }
}

fn json_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "bool",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: &serde_json::Value) -> String {
        let e = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        format!("{}.{}.{}", e(br#"{"alg":"HS256","typ":"JWT"}"#), e(claims.to_string().as_bytes()), e(b"sig"))
    }

    #[test]
    fn claims_as_go_actions_cache_reads_them() {
        // the shape of a runner's token: ac is JSON inside a string
        let ac = r#"[{"Scope":"refs/heads/main","Permission":1},{"Scope":"refs/heads/feature","Permission":3}]"#;
        let t = Token::parse(&jwt(&serde_json::json!({"ac": ac, "exp": 2000, "nbf": 1000})), 1500).unwrap();
        assert_eq!(t.scopes.len(), 2);
        assert_eq!(t.write_scope(), "refs/heads/feature");
        assert!(!format!("{t:?}").contains(&t.raw));
        let ro = r#"[{"scope":"refs/heads/main","permission":1}]"#;
        let t = Token::parse(&jwt(&serde_json::json!({"ac": ro, "exp": 2000, "nbf": 1000})), 1500).unwrap();
        assert_eq!((t.scopes[0].scope.as_str(), t.write_scope()), ("refs/heads/main", ""));
        for (claims, now, want) in [
            (serde_json::json!({"exp": 2000, "nbf": 1000}), 1500, "without access controls"),
            (serde_json::json!({"ac": [], "exp": 2000, "nbf": 1000}), 1500, "access controls type array"),
            (serde_json::json!({"ac": ac, "nbf": 1000}), 1500, "without exp"),
            (serde_json::json!({"ac": ac, "exp": 2000, "nbf": 1000}), 2001, "cache token expired at 2000"),
            (serde_json::json!({"ac": ac, "exp": 2000, "nbf": 1000}), 999, "future issue time"),
            (serde_json::json!({"ac": "x", "exp": 2000, "nbf": 1000}), 1500, "failed to parse token access controls"),
        ] {
            let e = Token::parse(&jwt(&claims), now).unwrap_err();
            assert!(e.contains(want), "{claims}: {e}");
        }
        assert!(Token::parse("not-a-jwt", 0).unwrap_err().contains("invalid number of segments"));
    }
}

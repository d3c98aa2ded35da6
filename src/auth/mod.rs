//! Who is asking: tenants, roles, API tokens and the caller of a request.
//!
//! Pure rules, no I/O: the store keeps tokens (only their hashes), the API turns a
//! `Authorization: Bearer …` header into a [`Caller`], and the service scopes what a
//! caller sees to its tenant. See docs/AUTH.md for the route table.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The tenant of jobs and sweeps created without tokens (and of every row older than
/// tenants).
pub const DEFAULT_TENANT: &str = "default";

/// Every token starts with this, so a leaked one is easy to recognise (secret scanners,
/// logs) and a value of another kind is refused before any lookup.
pub const TOKEN_PREFIX: &str = "lrlab_";

/// Bootstrap tokens (`LRLAB_BOOTSTRAP_TOKEN`) chosen by an operator must be at least this
/// long, so a guessable word is refused.
pub const MIN_BOOTSTRAP_LEN: usize = 32;

/// What a token may do. Ordered: each role may do everything the ones below it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Reads its tenant's jobs and sweeps.
    Viewer,
    /// Reads and changes (submits, cancels, deletes) its tenant's jobs and sweeps.
    Member,
    /// Everything, in every tenant, and the tokens.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Member, Role::Admin];

    /// The role's word on the command line, in JSON and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Member => "member",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role word that is not one of lrlab's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role `{0}`: expected admin, member or viewer")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(word: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == word)
            .ok_or_else(|| UnknownRole(word.to_string()))
    }
}

/// A tenant name that breaks the rules of [`check_tenant`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid tenant `{0}`: use 1 to 63 characters a-z, 0-9, `-` or `_`, starting with a letter or digit")]
pub struct InvalidTenant(pub String);

/// Tenant names are 1–63 characters `[a-z0-9_-]`, starting with a letter or digit: safe
/// in logs, URLs and metric labels, and never holding the `:` that scopes stored
/// idempotency keys (`<tenant>:<key>`).
pub fn check_tenant(name: &str) -> Result<(), InvalidTenant> {
    let ok = (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(InvalidTenant(name.to_string()))
    }
}

/// An `Idempotency-Key` as stored: scoped to its tenant, so two tenants may use one key.
pub fn scoped_key(tenant: &str, key: &str) -> String {
    format!("{tenant}:{key}")
}

/// A fresh token: [`TOKEN_PREFIX`] and 256 random bits in hex. `rand`'s thread RNG is a
/// CSPRNG seeded from the operating system.
pub fn generate_token() -> String {
    let bytes: [u8; 32] = rand::random();
    let mut token = String::with_capacity(TOKEN_PREFIX.len() + 64);
    token.push_str(TOKEN_PREFIX);
    for byte in bytes {
        token.push_str(&format!("{byte:02x}"));
    }
    token
}

/// What the store keeps of a token: its SHA-256, in hex.
///
/// A plain (unkeyed, unsalted) hash is enough here, unlike for passwords: a token holds
/// 256 random bits, so no dictionary or brute force can invert its hash, and a fast hash
/// keeps the per-request check cheap. A leaked database therefore reveals no usable token.
pub fn hash_token(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Whether a stored hash is the hash of the presented token, compared in constant time.
///
/// The store finds the row by an indexed equality on the hash, whose timing depends on
/// how much of the hash matches, not of the token: learning a prefix of a SHA-256 gives
/// an attacker nothing toward a token with that hash. This second, constant-time
/// comparison makes the final yes/no independent of where the bytes differ too, so no
/// timing difference of the answer depends on the secret in any way.
pub fn hashes_match(stored: &str, presented: &str) -> bool {
    stored.as_bytes().ct_eq(presented.as_bytes()).into()
}

/// Whether a presented value is worth a lookup: a token of lrlab's shape, or an operator's
/// bootstrap token (long, printable ASCII).
pub fn plausible_token(token: &str) -> bool {
    (token.len() >= MIN_BOOTSTRAP_LEN)
        && token.len() <= 256
        && token.bytes().all(|b| b.is_ascii_graphic())
}

/// A duration as `--expires` takes it: a number and a unit, `90m`, `12h`, `30d`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration `{0}`: expected a number and a unit, e.g. 90m, 12h or 30d")]
pub struct InvalidDuration(pub String);

/// Parses `90m`, `12h`, `30d` (minutes, hours, days; at most 10 years).
pub fn parse_duration(text: &str) -> Result<Duration, InvalidDuration> {
    let invalid = || InvalidDuration(text.to_string());
    // The unit is the last character, whatever its width (`"\u{9b}"` is two bytes).
    let unit = text.chars().last().ok_or_else(invalid)?;
    let number = &text[..text.len() - unit.len_utf8()];
    let count: u64 = number.parse().map_err(|_| invalid())?;
    let unit_secs = match unit {
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return Err(invalid()),
    };
    let secs = count.checked_mul(unit_secs).ok_or_else(invalid)?;
    if count == 0 || secs > 10 * 365 * 86_400 {
        return Err(invalid());
    }
    Ok(Duration::from_secs(secs))
}

/// Who makes a request: a token's tenant and role, or (without authentication) the
/// default tenant's admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's id; `None` when authentication is off.
    pub token: Option<i64>,
    pub tenant: String,
    pub role: Role,
}

impl Caller {
    /// The caller of every request when authentication is off: today's single-user lrlab.
    pub fn unauthenticated() -> Caller {
        Caller {
            token: None,
            tenant: DEFAULT_TENANT.to_string(),
            role: Role::Admin,
        }
    }

    /// The one tenant whose objects this caller sees, or `None` for all (an admin).
    pub fn scope(&self) -> Option<&str> {
        (self.role != Role::Admin).then_some(self.tenant.as_str())
    }

    /// Whether an object of `tenant` exists for this caller. Everything else is answered
    /// as missing (404), so ids of other tenants leak nothing.
    pub fn sees(&self, tenant: &str) -> bool {
        self.scope().is_none_or(|own| own == tenant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_hashed_to_hex() {
        let a = generate_token();
        let b = generate_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), TOKEN_PREFIX.len() + 64);
        assert!(plausible_token(&a));
        let hash = hash_token(&a);
        assert_eq!(hash.len(), 64);
        assert!(hashes_match(&hash, &hash_token(&a)));
        assert!(!hashes_match(&hash, &hash_token(&b)));
        assert!(!hashes_match(&hash, &hash[..63]));
    }

    #[test]
    fn tenant_names_are_plain_and_colon_free() {
        for good in ["default", "lab-2", "a", "team_x"] {
            assert_eq!(check_tenant(good), Ok(()), "{good}");
        }
        for bad in ["", "Lab", "a:b", "-x", "a b", &"x".repeat(64), "é"] {
            assert!(check_tenant(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn roles_are_ordered_and_admins_see_every_tenant() {
        assert!(Role::Viewer < Role::Member && Role::Member < Role::Admin);
        assert_eq!("member".parse::<Role>(), Ok(Role::Member));
        assert!("root".parse::<Role>().is_err());
        let member = Caller {
            token: Some(1),
            tenant: "a".into(),
            role: Role::Member,
        };
        assert!(member.sees("a") && !member.sees("b"));
        assert!(Caller::unauthenticated().sees("b"));
    }

    #[test]
    fn expiry_durations_need_a_unit() {
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_duration("90m"), Ok(Duration::from_secs(5400)));
        // Multi-byte text is refused, not a panic at a byte that splits a character.
        for bad in [
            "",
            "30",
            "d",
            "0d",
            "5w",
            "-1h",
            "99999d",
            "\u{9b}",
            "3\u{e9}",
            "1\u{1F600}",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}

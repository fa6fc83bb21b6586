//! Generated passwords and usernames for dynamic credentials. Both come from alphabets that
//! need no quoting in SQL string literals or identifiers, so templates can embed them as is.

use serde::{Deserialize, Serialize};

const LOWER: &str = "abcdefghijklmnopqrstuvwxyz";
const UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const DIGITS: &str = "0123456789";

/// How generated passwords look (`password_policy` on a database connection).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PasswordPolicy {
    /// Characters in a password (default 24; 16 to 128).
    #[serde(default = "default_length")]
    pub(crate) length: usize,
    /// Extra characters allowed beside letters and digits, from `-_.~!#%^*+=` (default `-`).
    #[serde(default = "default_symbols")]
    pub(crate) symbols: String,
}

fn default_length() -> usize {
    24
}

fn default_symbols() -> String {
    "-".to_owned()
}

/// Symbols that never need escaping in a single-quoted SQL literal or a URL's userinfo.
const SAFE_SYMBOLS: &str = "-_.~!#%^*+=";

impl Default for PasswordPolicy {
    fn default() -> Self {
        PasswordPolicy { length: default_length(), symbols: default_symbols() }
    }
}

impl PasswordPolicy {
    /// Why this policy cannot be used, if it cannot.
    pub(crate) fn check(&self) -> Result<(), String> {
        if !(16..=128).contains(&self.length) {
            return Err("password_policy.length must be between 16 and 128".into());
        }
        if let Some(c) = self.symbols.chars().find(|c| !SAFE_SYMBOLS.contains(*c)) {
            return Err(format!("password_policy.symbols: {c:?} is not one of {SAFE_SYMBOLS}"));
        }
        Ok(())
    }

    /// A new password: at least one lower-case letter, upper-case letter and digit, the
    /// rest drawn uniformly from the whole alphabet.
    pub(crate) fn generate(&self) -> String {
        let alphabet: Vec<char> = LOWER
            .chars()
            .chain(UPPER.chars())
            .chain(DIGITS.chars())
            .chain(self.symbols.chars())
            .collect();
        loop {
            let p = random_string(&alphabet, self.length);
            let has = |set: &str| p.chars().any(|c| set.contains(c));
            if has(LOWER) && has(UPPER) && has(DIGITS) {
                return p;
            }
        }
    }
}

/// `n` characters drawn uniformly from `alphabet` (rejection sampling, no modulo bias).
pub(crate) fn random_string(alphabet: &[char], n: usize) -> String {
    let limit = 256 - 256 % alphabet.len();
    let mut out = String::with_capacity(n);
    while out.len() < n {
        for b in crate::util::random_bytes(n * 2) {
            if usize::from(b) < limit && out.len() < n {
                out.push(alphabet[usize::from(b) % alphabet.len()]);
            }
        }
    }
    out
}

/// Lower-case letters and digits: for usernames and lease ids.
pub(crate) fn random_lower_alnum(n: usize) -> String {
    let alphabet: Vec<char> = LOWER.chars().chain(DIGITS.chars()).collect();
    random_string(&alphabet, n)
}

/// A username from `template` (default `v-{{role}}-{{random}}`; also `{{display_name}}` and
/// `{{unix_time}}`), reduced to `[a-z0-9_-]` and cut to `max_len` keeping the random part.
pub(crate) fn username(
    template: Option<&str>,
    role: &str,
    display_name: &str,
    max_len: usize,
) -> Result<String, String> {
    let template = template.unwrap_or("v-{{role}}-{{random}}");
    if !template.contains("{{random}}") {
        return Err("username_template must contain {{random}} so usernames are unique".into());
    }
    let clean = |s: &str, n: usize| -> String {
        s.chars()
            .map(|c| c.to_ascii_lowercase())
            .map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '-' })
            .take(n)
            .collect()
    };
    let random = random_lower_alnum(12);
    let rendered = template
        .replace("{{role}}", &clean(role, 12))
        .replace("{{display_name}}", &clean(display_name, 12))
        .replace("{{unix_time}}", &crate::util::now().to_string());
    if rendered.replace("{{random}}", "").contains("{{") {
        return Err("username_template may use {{role}}, {{display_name}}, {{unix_time}} and \
                    {{random}} only"
            .into());
    }
    // Cut the fixed parts (the part before the random one first), never the random one.
    let (before, after) = rendered.split_once("{{random}}").unwrap_or((&rendered, ""));
    let room = max_len.saturating_sub(random.len());
    let mut after = clean(after, 256);
    after.truncate(room);
    let before = clean(before, room - after.len());
    Ok(format!("{before}{random}{after}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_follow_the_policy() {
        let p = PasswordPolicy::default();
        let a = p.generate();
        assert_eq!(a.len(), 24);
        assert_ne!(a, p.generate());
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
        let long = PasswordPolicy { length: 64, symbols: "_.".into() };
        assert!(long.check().is_ok());
        assert_eq!(long.generate().len(), 64);
        assert!(PasswordPolicy { length: 8, ..PasswordPolicy::default() }.check().is_err());
        assert!(PasswordPolicy { symbols: "'".into(), ..PasswordPolicy::default() }
            .check()
            .is_err());
    }

    #[test]
    fn usernames_are_clean_and_bounded() {
        let u = username(None, "Read Only'; DROP", "tok", 32).unwrap();
        assert!(u.len() <= 32, "{u}");
        assert!(u.starts_with("v-read-only-"), "{u}");
        assert!(u
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'));
        let short =
            username(Some("{{display_name}}-{{role}}-{{random}}-x"), &"r".repeat(40), "d", 20)
                .unwrap();
        assert_eq!(short.len(), 20, "{short}");
        assert!(username(Some("{{role}}"), "r", "d", 32).is_err());
        assert!(username(Some("{{random}}{{rol}}"), "r", "d", 32).is_err());
    }
}

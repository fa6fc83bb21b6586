//! ACL policies for the HTTP API, in the language Vault users know:
//!
//! ```text
//! # comments with '#' or '//'
//! path "database/creds/readonly" {
//!   capabilities = ["read"]
//! }
//! path "sys/leases/*" { capabilities = ["update", "list"] }
//! ```
//!
//! A pattern matches a request path (the part after `/v1/`) exactly, or with `*` at its end
//! as a prefix, and `+` standing for one whole path segment. Where several patterns match,
//! the most specific one decides (see [`Specificity`]); `deny` in it refuses everything.
//! Nothing is allowed unless a policy says so.

use std::collections::BTreeSet;
use std::fmt;

/// What a request wants to do to a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Capability {
    Create,
    Read,
    Update,
    Delete,
    List,
    Sudo,
    Deny,
}

impl Capability {
    fn parse(s: &str) -> Option<Capability> {
        Some(match s {
            "create" => Capability::Create,
            "read" => Capability::Read,
            "update" => Capability::Update,
            "delete" => Capability::Delete,
            "list" => Capability::List,
            "sudo" => Capability::Sudo,
            "deny" => Capability::Deny,
            _ => return None,
        })
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Capability::Create => "create",
            Capability::Read => "read",
            Capability::Update => "update",
            Capability::Delete => "delete",
            Capability::List => "list",
            Capability::Sudo => "sudo",
            Capability::Deny => "deny",
        })
    }
}

/// A policy that could not be parsed, with the line it failed on.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("policy line {line}: {reason}")]
pub(crate) struct PolicyError {
    pub(crate) line: usize,
    pub(crate) reason: String,
}

/// One `path` block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Rule {
    pattern: String,
    capabilities: BTreeSet<Capability>,
}

/// A parsed policy: its rules, in file order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Policy {
    rules: Vec<Rule>,
}

/// Largest policy text accepted.
pub(crate) const MAX_POLICY_BYTES: usize = 64 * 1024;

#[derive(Debug, PartialEq, Eq)]
enum Token {
    Ident(String),
    Str(String),
    Punct(char),
}

fn tokenize(text: &str) -> Result<Vec<(usize, Token)>, PolicyError> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line_no = n + 1;
        let err = |reason: &str| PolicyError { line: line_no, reason: reason.to_owned() };
        let mut chars = line.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                c if c.is_whitespace() => {}
                '#' => break,
                '/' if line[i..].starts_with("//") => break,
                '{' | '}' | '[' | ']' | '=' | ',' => out.push((line_no, Token::Punct(c))),
                '"' => {
                    let mut s = String::new();
                    loop {
                        match chars.next() {
                            Some((_, '"')) => break,
                            Some((_, '\\')) => match chars.next() {
                                Some((_, c)) => s.push(c),
                                None => return Err(err("unterminated string")),
                            },
                            Some((_, c)) => s.push(c),
                            None => return Err(err("unterminated string")),
                        }
                    }
                    out.push((line_no, Token::Str(s)));
                }
                c if c.is_ascii_alphabetic() || c == '_' => {
                    let mut s = String::from(c);
                    while let Some(&(_, c)) = chars.peek() {
                        if !(c.is_ascii_alphanumeric() || c == '_') {
                            break;
                        }
                        s.push(c);
                        chars.next();
                    }
                    out.push((line_no, Token::Ident(s)));
                }
                _ => return Err(err(&format!("unexpected character {c:?}"))),
            }
        }
    }
    Ok(out)
}

impl Policy {
    /// Parses policy text (see the module docs for the language).
    pub(crate) fn parse(text: &str) -> Result<Policy, PolicyError> {
        if text.len() > MAX_POLICY_BYTES {
            return Err(PolicyError { line: 0, reason: "policy is larger than 64 KiB".into() });
        }
        let tokens = tokenize(text)?;
        let mut it = tokens.into_iter().peekable();
        let mut rules = Vec::new();
        let last_line = text.lines().count().max(1);
        let mut next = |want: &str| -> Result<(usize, Token), PolicyError> {
            it.next().ok_or_else(|| PolicyError {
                line: last_line,
                reason: format!("unexpected end of policy, expected {want}"),
            })
        };
        let unexpected = |line, want: &str, got: &Token| PolicyError {
            line,
            reason: format!("expected {want}, found {got:?}"),
        };
        while let Ok((line, tok)) = next("path") {
            if tok != Token::Ident("path".into()) {
                return Err(unexpected(line, "`path`", &tok));
            }
            let (line, tok) = next("a quoted path pattern")?;
            let Token::Str(pattern) = tok else {
                return Err(unexpected(line, "a quoted path pattern", &tok));
            };
            check_pattern(&pattern).map_err(|reason| PolicyError { line, reason })?;
            let (line, tok) = next("{")?;
            if tok != Token::Punct('{') {
                return Err(unexpected(line, "{", &tok));
            }
            let mut capabilities = BTreeSet::new();
            loop {
                let (line, tok) = next("capabilities or }")?;
                match tok {
                    Token::Punct('}') => break,
                    Token::Ident(key) if key == "capabilities" => {
                        let (line, tok) = next("=")?;
                        if tok != Token::Punct('=') {
                            return Err(unexpected(line, "=", &tok));
                        }
                        let (line, tok) = next("[")?;
                        if tok != Token::Punct('[') {
                            return Err(unexpected(line, "[", &tok));
                        }
                        loop {
                            let (line, tok) = next("a capability or ]")?;
                            match tok {
                                Token::Punct(']') => break,
                                Token::Punct(',') => {}
                                Token::Str(c) => {
                                    let cap = Capability::parse(&c).ok_or_else(|| PolicyError {
                                        line,
                                        reason: format!(
                                            "unknown capability {c:?} (create, read, update, \
                                             delete, list, sudo, deny)"
                                        ),
                                    })?;
                                    capabilities.insert(cap);
                                }
                                other => return Err(unexpected(line, "a capability", &other)),
                            }
                        }
                    }
                    other => return Err(unexpected(line, "`capabilities` or }", &other)),
                }
            }
            rules.push(Rule { pattern, capabilities });
        }
        Ok(Policy { rules })
    }

    /// The policy that allows everything (the `root` policy).
    pub(crate) fn root() -> Policy {
        let all = [
            Capability::Create,
            Capability::Read,
            Capability::Update,
            Capability::Delete,
            Capability::List,
            Capability::Sudo,
        ];
        Policy { rules: vec![Rule { pattern: "*".into(), capabilities: all.into() }] }
    }

    /// The policy every token has: it may look itself up and revoke itself.
    pub(crate) fn default_policy() -> Policy {
        #[allow(clippy::unwrap_used)] // a constant that the tests parse
        Policy::parse(DEFAULT_POLICY).unwrap()
    }
}

/// The text of the built-in `default` policy.
pub(crate) const DEFAULT_POLICY: &str = r#"
path "auth/token/lookup-self" { capabilities = ["read"] }
path "auth/token/revoke-self" { capabilities = ["update"] }
"#;

fn check_pattern(p: &str) -> Result<(), String> {
    if p.is_empty() || p.len() > 512 {
        return Err("a path pattern must have 1 to 512 characters".into());
    }
    if p.starts_with('/') {
        return Err(format!("path pattern {p:?} must not start with '/' (it is relative to /v1/)"));
    }
    if p.strip_suffix('*').unwrap_or(p).contains('*') {
        return Err(format!("path pattern {p:?}: '*' is allowed only at the end"));
    }
    if p.split('/').any(|seg| seg.contains('+') && seg != "+") {
        return Err(format!("path pattern {p:?}: '+' must be a whole path segment"));
    }
    Ok(())
}

fn matches(pattern: &str, path: &str) -> bool {
    let (pattern, prefix) = match pattern.strip_suffix('*') {
        Some(p) => (p, true),
        None => (pattern, false),
    };
    let mut p = pattern.split('/');
    let mut s = path.split('/');
    loop {
        match (p.next(), s.next()) {
            (None, None) => return true,
            (None, Some(_)) => return false,
            (Some(_), None) => return false,
            (Some(ps), Some(ss)) => {
                let last = p.clone().next().is_none();
                if last && prefix {
                    return ss.starts_with(ps);
                }
                if ps != "+" && ps != ss {
                    return false;
                }
            }
        }
    }
}

/// How specific a pattern is; greater wins (Vault's order, simplified): no wildcard at all,
/// then the later the first wildcard, then no trailing `*`, then fewer `+`, then longer.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Specificity {
    exact: bool,
    first_wildcard: usize,
    no_glob: bool,
    fewer_plus: std::cmp::Reverse<usize>,
    len: usize,
}

fn specificity(pattern: &str) -> Specificity {
    let first_wildcard = pattern.find(['*', '+']).unwrap_or(pattern.len());
    Specificity {
        exact: !pattern.contains(['*', '+']),
        first_wildcard,
        no_glob: !pattern.ends_with('*'),
        fewer_plus: std::cmp::Reverse(pattern.split('/').filter(|s| *s == "+").count()),
        len: pattern.len(),
    }
}

/// The capabilities a set of policies grants on `path`: those of the most specific matching
/// pattern (merged across policies that use the same pattern); empty if `deny` is among them.
pub(crate) fn capabilities<'a>(
    policies: impl IntoIterator<Item = &'a Policy>,
    path: &str,
) -> BTreeSet<Capability> {
    let mut best: Option<(Specificity, BTreeSet<Capability>)> = None;
    for rule in policies.into_iter().flat_map(|p| &p.rules) {
        if !matches(&rule.pattern, path) {
            continue;
        }
        let spec = specificity(&rule.pattern);
        match &mut best {
            Some((b, caps)) if *b == spec => caps.extend(rule.capabilities.iter().copied()),
            Some((b, _)) if *b > spec => {}
            _ => best = Some((spec, rule.capabilities.clone())),
        }
    }
    match best {
        Some((_, caps)) if !caps.contains(&Capability::Deny) => caps,
        _ => BTreeSet::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(policy: &str, path: &str) -> Vec<String> {
        let p = Policy::parse(policy).unwrap();
        capabilities([&p], path).iter().map(ToString::to_string).collect()
    }

    #[test]
    fn parses_the_documented_form() {
        let p = Policy::parse(
            "# readers\npath \"database/creds/ro\" {\n  capabilities = [\"read\", \"list\",]\n}\n\
             // another\npath \"sys/*\" { capabilities = [\"deny\"] }",
        )
        .unwrap();
        assert_eq!(p.rules.len(), 2);
        assert!(Policy::parse(DEFAULT_POLICY).is_ok());
        assert!(Policy::parse("").unwrap().rules.is_empty());
    }

    #[test]
    fn bad_policies_name_the_line() {
        let e = Policy::parse("path \"a\" {\n capabilities = [\"fly\"]\n}").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.reason.contains("fly"));
        assert!(Policy::parse("path \"a\" {").is_err());
        assert!(Policy::parse("path a { }").is_err());
        assert!(Policy::parse("path \"a*b\" { }").is_err());
        assert!(Policy::parse("path \"a**\" { }").is_err());
        // A pattern ending in a character of several bytes is read, not sliced through.
        assert!(Policy::parse("path \"caf\u{e9}\" { capabilities = [\"read\"] }").is_ok());
        assert!(Policy::parse("path \"/v1/a\" { }").is_err());
        assert!(Policy::parse("path \"a\" { policy = \"write\" }").is_err());
        assert!(Policy::parse("path \"a\" { capabilities = [\"read\" }").is_err());
        assert!(Policy::parse(&"#".repeat(MAX_POLICY_BYTES + 1)).is_err());
    }

    #[test]
    fn matching_and_specificity() {
        let p = r#"
            path "database/creds/*" { capabilities = ["read"] }
            path "database/creds/admin" { capabilities = ["deny"] }
            path "database/+/web" { capabilities = ["list"] }
            path "sys/leases/revoke-prefix/database/*" { capabilities = ["update"] }
        "#;
        assert_eq!(caps(p, "database/creds/ro"), ["read"]);
        assert!(caps(p, "database/creds/admin").is_empty());
        assert_eq!(caps(p, "database/roles/web"), ["list"]);
        // The glob with the later wildcard is more specific than the '+' one.
        assert_eq!(caps(p, "database/creds/web"), ["read"]);
        assert!(caps(p, "database/config/x").is_empty());
        assert!(caps(p, "database/creds").is_empty());
        assert_eq!(caps(p, "sys/leases/revoke-prefix/database/creds/ro"), ["update"]);
        assert!(caps(p, "sys/leases/revoke-prefix/pki").is_empty());
        assert_eq!(caps("path \"a/*\" { capabilities = [\"read\"] }", "a/"), ["read"]);
        assert_eq!(caps("path \"a*\" { capabilities = [\"read\"] }", "abc/d"), ["read"]);
        assert!(caps("path \"a/b\" { capabilities = [\"read\"] }", "a/b/c").is_empty());
    }

    #[test]
    fn same_pattern_in_two_policies_merges_and_root_allows_all() {
        let a = Policy::parse("path \"x\" { capabilities = [\"read\"] }").unwrap();
        let b = Policy::parse("path \"x\" { capabilities = [\"update\"] }").unwrap();
        let got: Vec<_> = capabilities([&a, &b], "x").into_iter().collect();
        assert_eq!(got, [Capability::Read, Capability::Update]);
        assert!(capabilities([&Policy::root()], "any/path").contains(&Capability::Delete));
        assert!(capabilities([&Policy::default()], "any/path").is_empty());
    }
}

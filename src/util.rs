//! Small helpers shared by the layers: randomness and time.

/// `n` random bytes from the operating system, hex-encoded.
pub(crate) fn random_hex(n: usize) -> String {
    hex::encode(random_bytes(n))
}

/// `n` random bytes from the operating system.
pub(crate) fn random_bytes(n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    // The OS RNG failing is unrecoverable for a key manager.
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut b).expect("operating system random number generator failed");
    b
}

/// A random version-4 UUID, as text.
pub(crate) fn uuid_v4() -> String {
    let mut b = random_bytes(16);
    b[6] = (b[6] & 0x0F) | 0x40;
    b[8] = (b[8] & 0x3F) | 0x80;
    let h = hex::encode(&b);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

/// Seconds since the POSIX epoch.
pub(crate) fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Unix seconds as RFC 3339 text in UTC (`2026-11-29T20:05:18Z`).
pub(crate) fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

/// Test vector files: cases separated by blank lines, `name: value` lines, `#` comments.
#[cfg(test)]
pub(crate) mod test_vectors {
    use std::collections::HashMap;

    /// The cases of a vector file, each its values by name.
    pub(crate) fn vectors(text: &str) -> Vec<HashMap<String, String>> {
        text.split("\n\n")
            .map(|case| {
                case.lines()
                    .filter(|l| !l.starts_with('#'))
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                    .collect()
            })
            .filter(|case: &HashMap<_, _>| !case.is_empty())
            .collect()
    }

    /// A hex value of a case; empty when absent.
    pub(crate) fn bytes(case: &HashMap<String, String>, name: &str) -> Vec<u8> {
        hex::decode(case.get(name).map_or("", String::as_str)).unwrap_or_default()
    }
}

/// `n` mutations of `base` (bytes set, cut, inserted), the same ones for the same seed:
/// for checking that a reader of untrusted bytes refuses, never panics.
#[cfg(test)]
pub(crate) fn mutations(base: &[u8], seed: u64, n: usize) -> impl Iterator<Item = Vec<u8>> + '_ {
    let mut state = seed | 1;
    let mut next = move || {
        // xorshift64
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state as usize
    };
    (0..n).map(move |_| {
        let mut m = base.to_vec();
        for _ in 0..1 + next() % 4 {
            let i = next() % (m.len() + 1);
            match next() % 3 {
                0 if i < m.len() => m[i] = next() as u8,
                1 => m.truncate(i),
                _ => m.insert(i, next() as u8),
            }
        }
        m
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn uuid_shape() {
        let u = super::uuid_v4();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert_ne!(u, super::uuid_v4());
    }
}
